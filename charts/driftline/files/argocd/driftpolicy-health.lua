-- Argo CD health of a driftline.dev DriftPolicy, from what the operator wrote in status.
-- Install: argocd-cm key resource.customizations.health.driftline.dev_DriftPolicy.
-- Degraded: a drift check or training failed, or the operator cannot reconcile (Degraded).
-- Healthy: the CronJob is in place (Ready); found drift or a performance breach is news, not
-- ill health: it says so.
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end
local degraded = conditions["Degraded"]
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end
local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Drift checks scheduled"
  local check = obj.status.lastCheck
  if check ~= nil and check.drifted == true then
    hs.message = "Drift found: " .. (check.reason or "")
  end
  if check ~= nil and check.performance ~= nil and check.performance.status == "breach" then
    hs.message = "Performance breach: " .. (check.performance.reason or "")
  end
end
return hs
