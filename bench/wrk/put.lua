-- PUT BENCH_SIZE bytes to BENCH_PREFIX .. "<thread>-<n mod BENCH_COUNT>" (new files, then overwrites).
-- Prints one line "BENCHJSON {...}" at the end (read by bench/clients.py).
local prefix = os.getenv("BENCH_PREFIX")
local count = tonumber(os.getenv("BENCH_COUNT"))
local auth = os.getenv("BENCH_AUTH")
local body = string.rep("x", tonumber(os.getenv("BENCH_SIZE")))
local next_id = 0
local n = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
end

function request()
  n = n + 1
  return wrk.format("PUT", string.format("%st%d-%04d", prefix, thread_id or 0, n % count), nil, body)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
