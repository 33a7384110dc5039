-- PATCH /users/{id} over the pool of seeded ids: a new age each time. args: <ids file>
local ids
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   ids = load_ids(args[1])
   seed_random()
end

function request()
   local body = string.format("{\"age\":%d}", math.random(0, 150))
   return wrk.format("PATCH", "/users/" .. ids[math.random(#ids)], headers, body)
end
