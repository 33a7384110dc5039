"""`python -m cqlstar`: serve the API (see `cqlstar.serving`)."""

from cqlstar.serving import main

# Guarded so that a worker started with the "spawn" method, which re-imports the main module, does
# not start a server of its own.
if __name__ == "__main__":
    main()
