-- GET BENCH_PREFIX .. NNNN, cycling through BENCH_COUNT files; each thread starts elsewhere.
-- Prints one line "BENCHJSON {...}" at the end (read by bench/clients.py).
local prefix = os.getenv("BENCH_PREFIX")
local count = tonumber(os.getenv("BENCH_COUNT"))
local auth = os.getenv("BENCH_AUTH")
local next_id = 0
local n = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
  n = (thread_id or 0) * 7919
end

function request()
  n = n + 1
  return wrk.format("GET", string.format("%s%04d", prefix, n % count))
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
