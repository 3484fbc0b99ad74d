-- Argo CD health check for backfill.dev Backfill and PartitionedJob (one script for both kinds).
--
-- Reads what the operator writes (docs/design.md): status.observedGeneration, status.phase
-- (Backfill only: Pending, Running, Suspended, Succeeded, Failed, Invalid) and the kstatus
-- conditions Ready, Reconciling and Stalled. Argo CD runs it with gopher-lua (Lua 5.1), so it
-- sticks to Lua 5.1; tests/unit/test_argocd_health.py runs it with lua5.4 on sample objects.
local hs = { status = "Progressing", message = "Waiting for the operator to report status" }

if obj.status == nil then
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- Conditions by type; a condition written for an older generation does not count.
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    local stale = generation ~= nil and condition.observedGeneration ~= nil
      and condition.observedGeneration < generation
    if condition.type ~= nil and not stale then
      conditions[condition.type] = condition
    end
  end
end

local function is_true(ctype)
  local condition = conditions[ctype]
  return condition ~= nil and condition.status == "True"
end

local function describe(ctype, fallback)
  local condition = conditions[ctype]
  if condition == nil then
    return fallback
  end
  local text = condition.message
  if text == nil or text == "" then
    text = condition.reason
  end
  if text == nil or text == "" then
    return fallback
  end
  return text
end

local phase = obj.status.phase

if is_true("Stalled") then
  hs.status = "Degraded"
  hs.message = describe("Stalled", "Stalled")
  return hs
end
if phase == "Failed" or phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = describe("Ready", "Phase " .. phase)
  return hs
end
if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = describe("Ready", "Suspended: no new partitions are launched")
  return hs
end
if phase == "Succeeded" or is_true("Ready") then
  hs.status = "Healthy"
  hs.message = describe("Ready", "Ready")
  return hs
end
if is_true("Reconciling") then
  hs.message = describe("Reconciling", "Reconciling")
  return hs
end
if phase ~= nil then
  hs.message = "Phase " .. phase
end
return hs
