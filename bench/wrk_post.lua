-- POST the body in the file named by $BENCH_BODY as a Messages request, and print the
-- results as one machine-readable line (latencies in microseconds) when the run ends.
-- "sent" counts the requests wrk began writing; "requests" those it read an answer to. The
-- difference is what was still in flight when the run stopped (at most one per connection).
-- Before the run, wrk calls request() once in the first thread to check what it returns
-- (script_verify_request); that call sent nothing and is not counted.

local path = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  encoded = wrk.format()
end

function request()
  sent = sent + 1
  return encoded
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_sent = -1 -- the check before the run
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"sent":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, total_sent, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
