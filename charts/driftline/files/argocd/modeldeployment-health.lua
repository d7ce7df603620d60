-- Argo CD health of a driftline.dev ModelDeployment, from what the operator wrote in status.
-- Install: argocd-cm key resource.customizations.health.driftline.dev_ModelDeployment.
-- Degraded: the operator cannot reconcile (condition Degraded) or the rollout was aborted.
-- Suspended: a rollout step waits (for its analysis to pass, or for driftline.dev/promote).
-- Healthy: every variant and the router are available. Progressing otherwise.
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end
local degraded = conditions["Degraded"]
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end
local rollout = obj.status.rollout
if rollout ~= nil and rollout.phase == "Aborted" then
  hs.status = "Degraded"
  hs.message = "Rollout aborted: " .. (rollout.message or "")
  return hs
end
if rollout ~= nil and rollout.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = rollout.message or "Rollout paused"
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Every variant is available"
  if rollout ~= nil and (rollout.phase == "Progressing" or rollout.phase == "Analysing") then
    hs.status = "Progressing"
    hs.message = rollout.message or "Rollout in progress"
  end
  return hs
end
if ready ~= nil then
  hs.message = ready.message or hs.message
end
return hs
