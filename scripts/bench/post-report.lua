-- wrk script: every request declares a new (commune, day), so that each one is a
-- real first write. Threads take disjoint slots: slot = counter * threads + id.
-- DECOMPTE_BENCH_DELAY_MS paces each connection (wrk measures latency without it).
-- DECOMPTE_BENCH_COMMUNES: one line per commune, "<INSEE code> <its mairie's access code>".
local codes = {}
local access = {}
local threads = {}
local counter = 0
local nthreads = 1
local pause = 0
-- `id`, `server_errors` and `statuses_seen` are globals of each thread.

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("DECOMPTE_BENCH_COMMUNES")) do
    local commune, code = line:match("^(%S+)%s+(%S+)$")
    table.insert(codes, commune)
    table.insert(access, code)
  end
  nthreads = tonumber(os.getenv("DECOMPTE_BENCH_THREADS") or "2")
  pause = tonumber(os.getenv("DECOMPTE_BENCH_DELAY_MS") or "0")
  id = id or 0
  server_errors = 0
  statuses_seen = ""
end

function delay()
  return pause
end

local base = os.time({year = 2020, month = 3, day = 1, hour = 12})

function request()
  local slot = counter * nthreads + id
  counter = counter + 1
  local index = (slot % #codes) + 1
  local commune = codes[index]
  local day = math.floor(slot / #codes)
  local date = os.date("!%Y-%m-%d", base + day * 86400)
  local body = string.format(
    '{"confirm":true,"commune":"%s","date":"%s","counts":{"hopital":1,"ehpad":0,"esms":0,"domicile":2,"autre":0}}',
    commune, date)
  return wrk.format("POST", "/api/v1/reports", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. access[index],
  }, body)
end

local seen = {}
function response(status, headers, body)
  if status >= 500 then
    server_errors = server_errors + 1
  end
  if status ~= 201 and not seen[status] then
    seen[status] = true
    statuses_seen = statuses_seen .. " " .. status
  end
end

function done(summary, latency, requests)
  local errors = 0
  local statuses = ""
  for _, thread in ipairs(threads) do
    errors = errors + thread:get("server_errors")
    statuses = statuses .. thread:get("statuses_seen")
  end
  io.write(string.format("writes/s: %.0f (%d in %.0f s)\n",
    summary.requests / (summary.duration / 1e6), summary.requests, summary.duration / 1e6))
  io.write(string.format("p50: %.2f ms  p99: %.2f ms  max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx or socket errors: %d; 5xx: %d; statuses other than 201:%s\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, errors, statuses))
end
