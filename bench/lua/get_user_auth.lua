-- GET /users/{id} with a bearer token, over the pool of seeded ids in random order.
-- args: <ids file> <tokens file>. Each thread reuses one token of the pool, as a client does.
local ids
local authorization

function init(args)
   ids = load_ids(args[1])
   local tokens = load_ids(args[2])
   authorization = "Bearer " .. tokens[((thread_index or 0) % #tokens) + 1]
   seed_random()
end

function request()
   return wrk.format("GET", "/users/" .. ids[math.random(#ids)], { ["Authorization"] = authorization })
end
