-- wrk: every request is a JSON webhook delivery
wrk.method = "POST"
wrk.body = '{"event":"bench","n":1}'
wrk.headers["Content-Type"] = "application/json"
