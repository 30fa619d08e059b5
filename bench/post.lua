-- wrk script of `make bench`: POST /api/message with a small JSON body.
--   wrk -t2 -c32 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/api/message
-- (No response() callback: it would make wrk parse every answer in Lua;
-- wrk counts non-2xx answers by itself.)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"content":"bench: how fast is the API?"}'
