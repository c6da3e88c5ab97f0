-- Argo CD health of Stasis' Checkpoint, Restore, CheckpointSchedule and CheckpointStorage
-- (group stasis.dev), from the conditions the operator keeps on each of them:
--   Stalled True                 -> Degraded     (failed for good: the reason and message say why)
--   Reconciling True             -> Progressing  (work under way, or waiting for a retry or a slot)
--   Ready True                   -> Healthy      (Suspended for a suspended CheckpointSchedule)
--   no status yet, or a spec the operator has not seen (metadata.generation ahead of
--   status.observedGeneration)   -> Progressing
-- Argo CD runs health checks in Lua 5.1 (gopher-lua) with only the base, table and os libraries:
-- no string or math functions here.
local hs = {status = "Progressing", message = "waiting for the Stasis operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "waiting for the Stasis operator to see generation " .. generation
  return hs
end
local found = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    found[condition.type] = condition
  end
end
local function said(condition)
  local text = condition.reason or ""
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end
if found.Stalled ~= nil and found.Stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = said(found.Stalled)
elseif found.Reconciling ~= nil and found.Reconciling.status == "True" then
  hs.message = said(found.Reconciling)
elseif found.Ready ~= nil and found.Ready.status == "True" then
  hs.status = "Healthy"
  if found.Ready.reason == "Suspended" then
    hs.status = "Suspended"
  end
  hs.message = said(found.Ready)
elseif found.Ready ~= nil then
  hs.message = said(found.Ready)
end
return hs
