-- Shared by every wrk scenario; the harness prepends it to the scenario's own script.
--
-- wrk runs `setup` in its main Lua state, then `init`/`request` in one state per thread, then `done`
-- in the main state again. `done` prints one line the harness parses: wrk's own percentiles (the
-- text summary has no p90) and every kind of error, in microseconds and counts.

local thread_count = 0

function setup(thread)
   thread:set("thread_index", thread_count)
   thread_count = thread_count + 1
end

-- One id per line, written by the harness from the seeded keyspace.
function load_ids(path)
   local ids = {}
   for line in io.lines(path) do
      if #line > 0 then
         ids[#ids + 1] = line
      end
   end
   if #ids == 0 then
      error("no ids in " .. path)
   end
   return ids
end

function seed_random()
   -- Threads must not walk the pool in lock step.
   math.randomseed(os.time() + 7919 * (thread_index or 0))
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      "BENCH_RESULT {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,"
         .. "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,"
         .. "\"status_errors\":%d,\"timeout_errors\":%d,"
         .. "\"min_us\":%d,\"mean_us\":%.1f,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,"
         .. "\"p999_us\":%d,\"max_us\":%d}\n",
      summary.requests, summary.duration, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max))
end
