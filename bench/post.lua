-- wrk script: POST a 1 MiB body to every request (wrk adds Content-Length),
-- and report like report.lua, which must sit in the same directory.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

wrk.method = "POST"
wrk.body = string.rep("x", 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
