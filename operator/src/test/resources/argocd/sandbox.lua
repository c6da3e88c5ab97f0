-- Runs an Argo CD health script as Argo CD does (Lua 5.1, as gopher-lua speaks it): the object in
-- the global obj, only the base, table and os libraries (no string, math, io or debug, and no
-- methods on strings), and the script's returned table read as the health.
--   lua5.1 sandbox.lua HEALTH_SCRIPT OBJECT   (OBJECT: a Lua chunk that returns the object as a table)
-- Prints the status on the first line and the message after it.
local script, object = arg[1], arg[2]
local obj = assert(loadfile(object))()
local health = assert(loadfile(script))

local env = {obj = obj, table = table, os = {time = os.time, date = os.date, clock = os.clock}}
for _, name in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
    "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type", "unpack", "xpcall"}) do
  env[name] = _G[name]
end
env._G = env
setfenv(health, env)
local strings = getmetatable("")
local methods = strings.__index
strings.__index = nil
local ok, hs = pcall(health)
strings.__index = methods
if not ok then
  io.stderr:write("health script failed: " .. tostring(hs) .. "\n")
  os.exit(1)
end
if type(hs) ~= "table" then
  io.stderr:write("health script returned " .. type(hs) .. ", not a table\n")
  os.exit(1)
end
io.write(tostring(hs.status), "\n", tostring(hs.message or ""), "\n")
