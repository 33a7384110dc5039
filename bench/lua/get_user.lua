-- GET /users/{id} over the pool of seeded ids, in random order. args: <ids file>
local ids

function init(args)
   ids = load_ids(args[1])
   seed_random()
end

function request()
   return wrk.format("GET", "/users/" .. ids[math.random(#ids)])
end
