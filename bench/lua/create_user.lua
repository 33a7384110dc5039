-- POST /users with a fresh valid user each time (unique email per thread and request).
local headers = { ["Content-Type"] = "application/json" }
local counter = 0
local run_tag

function init(args)
   seed_random()
   run_tag = string.format("%x%x", os.time(), thread_index or 0)
end

function request()
   counter = counter + 1
   local body = string.format(
      "{\"name\":\"Bench User %d\",\"email\":\"bench-%s-%d@example.com\",\"age\":%d}",
      counter, run_tag, counter, math.random(0, 150))
   return wrk.format("POST", "/users", headers, body)
end
