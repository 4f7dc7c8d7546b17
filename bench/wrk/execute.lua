-- wrk script for POST /api/v1/execute (bench/support.py: run_wrk).
-- Arguments: the API key, then groups of four: weight, body file, content type, and a
-- string every right answer to that body contains. Each request picks a body at random by
-- weight; a response counts as expected when it is a 200 containing one of those strings.
-- done() prints one line, WRK_JSON {...}, that run_wrk parses.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("seed", #threads)
end

function init(args)
  local key = args[1]
  bodies = {}
  expects = {}
  total_weight = 0
  local i = 2
  while i + 3 <= #args do
    local weight = tonumber(args[i])
    local file = assert(io.open(args[i + 1], "rb"))
    local body = file:read("*a")
    file:close()
    total_weight = total_weight + weight
    table.insert(bodies, {
      until_weight = total_weight,
      request = wrk.format("POST", nil, {
        ["Authorization"] = "Bearer " .. key,
        ["Content-Type"] = args[i + 2],
      }, body),
    })
    table.insert(expects, args[i + 3])
    i = i + 4
  end
  math.randomseed(seed)
  statuses = {}
  unexpected = 0
  sample = ""
end

function request()
  local r = math.random() * total_weight
  for _, body in ipairs(bodies) do
    if r < body.until_weight then
      return body.request
    end
  end
  return bodies[#bodies].request
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    for _, expect in ipairs(expects) do
      if string.find(body, expect, 1, true) then
        return
      end
    end
  end
  unexpected = unexpected + 1
  if sample == "" then
    sample = status .. " " .. string.sub(body, 1, 300)
  end
end

local function quote(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local statuses_total = {}
  local unexpected_total = 0
  local sample_any = ""
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      statuses_total[status] = (statuses_total[status] or 0) + count
    end
    unexpected_total = unexpected_total + thread:get("unexpected")
    local sample = thread:get("sample")
    if sample_any == "" and sample ~= "" then
      sample_any = sample
    end
  end
  local parts = {}
  for status, count in pairs(statuses_total) do
    table.insert(parts, '"' .. status .. '":' .. count)
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"unexpected":%d,'
      .. '"statuses":{%s},"sample":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, unexpected_total,
    table.concat(parts, ","), quote(sample_any)))
end
