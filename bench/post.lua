-- wrk script of `make bench`: POST /api/message with a small JSON body.
--   wrk -s bench/post.lua --latency http://127.0.0.1:PORT/api/message
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"content":"bench: how fast is the API?"}'

-- count non-200 answers, which wrk only reports as "Non-2xx"
local bad = 0
function response(status, headers, body)
    if status ~= 200 then bad = bad + 1 end
end
