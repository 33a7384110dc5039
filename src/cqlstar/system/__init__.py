"""Routes about the service itself rather than its data: welcome, health, shutdown."""
