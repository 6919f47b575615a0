package redisbroker

import "github.com/redis/go-redis/v9"

// Every change to a room happens in one of the Lua scripts below, so each
// is atomic: the sequence number is taken, the state changed and the event
// published in one step, and every subscriber sees the events in sequence
// order.
//
// Keys of a room, all under base = Prefix + "{" + room + "}:" so that they
// share one hash slot on a Redis Cluster:
//
//	seq      STRING  last sequence number taken (ids of messages, joins, leaves)
//	epoch    STRING  random id of the room's data, new if Redis lost it
//	log      LIST    the last 1000 events of every kind, for catching up
//	hist     LIST    recent public message events, oldest first, capped
//	names    HASH    name key (chat.NameKey) -> name as joined
//	profs    HASH    name key -> public profile as JSON, {"d":display,"a":avatar}, if any
//	owner    HASH    name key -> id of the instance (link) that holds it
//	order    ZSET    name key scored by its join sequence number
//	insts    SET     ids of instances that hold at least one name
//	m:<id>   SET     name keys held by instance <id>
//	hb:<id>  STRING  heartbeat of instance <id>, expires after MemberTTL
//	ban:<k>  STRING  the event that banned name key <k>, expires with the ban
//	mute:<k> STRING  the event that muted name key <k>, expires with the mute
//	restr    SET     "ban:<k>" and "mute:<k>" of the keys above, some maybe expired
//
// Events are published on the channel base + "events" as JSON objects:
//
//	{"s":7,"k":"j","u":"bob"}                                join
//	{"s":7,"k":"j","u":"bob","p":{"d":"Bob"}}                join with a profile
//	{"s":8,"k":"l","u":"bob"}                                leave
//	{"s":9,"k":"m","t":1763780000123,"m":{"u":"bob","b":"hi"}} message
//	{"s":10,"k":"n"}                                         no-op (sequence raised)
//	{"s":11,"k":"x","a":"ban","u":"bob","r":"spam","e":1763783600123} moderation
//	{"k":"t","u":"bob"}                                      typing (no number, not logged)
//
// A message's "m" may also hold "to" (the recipient of a private message),
// "sys" (a system message), "o" (Message.Origin) and "xo"
// (Message.ToOrigin). A moderation event's "a" is one of kick, ban, unban,
// mute and unmute, "r" the reason, "e" the end of a ban or mute in Unix
// milliseconds (0 for the others). Typing notices are published by the
// link itself, outside the scripts: they take no sequence number and
// never enter the log.
//
// Every script gets ARGV[1] = base and ARGV[2] = channel, and KEYS[1] = the
// seq key so that a cluster client routes it to the room's slot.

// prelude holds the helpers shared by the scripts.
const prelude = `
local base, chan = ARGV[1], ARGV[2]

local function int(n) return string.format('%d', n) end

-- emit publishes an event and appends it to the log.
local function emit(ev)
  redis.call('PUBLISH', chan, ev)
  redis.call('RPUSH', base .. 'log', ev)
  redis.call('LTRIM', base .. 'log', -1000, -1)
end

-- nameEvent encodes a join or leave; prof is a profile's JSON (from the
-- link, which encoded it) or ''.
local function nameEvent(seq, kind, name, prof)
  local ev = '{"s":' .. int(seq) .. ',"k":"' .. kind .. '","u":' .. cjson.encode(name)
  if prof ~= '' then ev = ev .. ',"p":' .. prof end
  return ev .. '}'
end

local function join(inst, key, name, prof)
  local seq = redis.call('INCR', base .. 'seq')
  redis.call('HSET', base .. 'names', key, name)
  if prof ~= '' then redis.call('HSET', base .. 'profs', key, prof) end
  redis.call('HSET', base .. 'owner', key, inst)
  redis.call('ZADD', base .. 'order', seq, key)
  redis.call('SADD', base .. 'insts', inst)
  redis.call('SADD', base .. 'm:' .. inst, key)
  emit(nameEvent(seq, 'j', name, prof))
end

-- leave releases key if inst holds it and announces it.
local function leave(inst, key)
  redis.call('SREM', base .. 'm:' .. inst, key)
  if redis.call('SCARD', base .. 'm:' .. inst) == 0 then
    redis.call('SREM', base .. 'insts', inst)
  end
  if redis.call('HGET', base .. 'owner', key) ~= inst then return 0 end
  local name = redis.call('HGET', base .. 'names', key)
  redis.call('HDEL', base .. 'names', key)
  redis.call('HDEL', base .. 'profs', key)
  redis.call('HDEL', base .. 'owner', key)
  redis.call('ZREM', base .. 'order', key)
  local seq = redis.call('INCR', base .. 'seq')
  emit(nameEvent(seq, 'l', name, ''))
  return 1
end

-- leaveAll releases every name inst holds, in join order.
local function leaveAll(inst)
  local keys = redis.call('SMEMBERS', base .. 'm:' .. inst)
  local score = {}
  for _, k in ipairs(keys) do
    score[k] = tonumber(redis.call('ZSCORE', base .. 'order', k)) or 0
  end
  table.sort(keys, function(a, b) return score[a] < score[b] end)
  for _, k in ipairs(keys) do leave(inst, k) end
  redis.call('DEL', base .. 'm:' .. inst)
  redis.call('SREM', base .. 'insts', inst)
end

-- sweep releases the names of every instance whose heartbeat expired.
local function sweep()
  for _, id in ipairs(redis.call('SMEMBERS', base .. 'insts')) do
    if redis.call('EXISTS', base .. 'hb:' .. id) == 0 then leaveAll(id) end
  end
end
`

func script(body string) *redis.Script { return redis.NewScript(prelude + body) }

// joinScript claims a name. ARGV: 3 instance, 4 heartbeat TTL in ms,
// 5 name key, 6 name, 7 profile as JSON or "". Returns 1, 0 if the name
// is taken, or -1 if it is banned.
var joinScript = script(`
if redis.call('EXISTS', base .. 'ban:' .. ARGV[5]) == 1 then return -1 end
if redis.call('HEXISTS', base .. 'names', ARGV[5]) == 1 then return 0 end
redis.call('SET', base .. 'hb:' .. ARGV[3], '1', 'PX', ARGV[4])
join(ARGV[3], ARGV[5], ARGV[6], ARGV[7])
return 1
`)

// leaveScript releases a name held by the instance. ARGV: 3 instance,
// 4 name key. Returns 1, or 0 if the instance did not hold it.
var leaveScript = script(`return leave(ARGV[3], ARGV[4])`)

// publishScript takes the next sequence number for a message, appends it to
// the history unless it is private, and publishes it. ARGV: 3 history cap,
// 4 name key of the recipient or "" for a public message, 5 the message as
// JSON, 6 name key of the sender, or "" for a system message. Returns 1, 0
// if the recipient is not in the room, or -1 if the sender is muted.
var publishScript = script(`
if ARGV[6] ~= '' and redis.call('EXISTS', base .. 'mute:' .. ARGV[6]) == 1 then return -1 end
if ARGV[4] ~= '' and redis.call('HEXISTS', base .. 'names', ARGV[4]) == 0 then return 0 end
local seq = redis.call('INCR', base .. 'seq')
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ev = '{"s":' .. int(seq) .. ',"k":"m","t":' .. int(ms) .. ',"m":' .. ARGV[5] .. '}'
local cap = tonumber(ARGV[3])
if ARGV[4] == '' and cap > 0 then
  redis.call('RPUSH', base .. 'hist', ev)
  redis.call('LTRIM', base .. 'hist', -cap, -1)
end
emit(ev)
return 1
`)

// heartbeatScript refreshes the instance's heartbeat and releases the
// names of every instance whose heartbeat has expired. ARGV: 3 instance,
// 4 heartbeat TTL in ms. Returns 1 if the heartbeat was still alive, 0 if
// it had expired (the instance's names may have been released).
var heartbeatScript = script(`
local alive = redis.call('SET', base .. 'hb:' .. ARGV[3], '1', 'PX', ARGV[4], 'GET')
sweep()
if alive then return 1 end
return 0
`)

// syncScript runs before every sync: it makes the names held by the
// instance exactly the given ones (Redis may have lost them, or swept them
// after the instance's heartbeat expired), then returns what the instance
// needs to catch up. In order, it refreshes the heartbeat, raises the
// sequence to at least the highest number the instance has seen (so ids
// keep increasing if Redis lost the room), sweeps dead instances, releases
// names the instance no longer has and claims the missing ones in the
// given order.
//
// ARGV: 3 instance, 4 heartbeat TTL in ms, 5 highest sequence number seen,
// 6 last sequence number delivered, 7 epoch of that number, 8 a new epoch
// to use if the room has none, then triples of name key, name and profile
// as JSON (or "").
//
// Returns {lost, epoch, seq, "e", events} if the log holds every event
// after the last one delivered in the same epoch and no name was lost, or
// else {lost, epoch, seq, "s", names in join order, history, restrictions
// (the events of the bans and mutes in force), profiles as JSON (or "") in
// the order of names}. lost lists the names another
// instance has claimed meanwhile.
var syncScript = script(`
local inst = ARGV[3]
redis.call('SET', base .. 'hb:' .. inst, '1', 'PX', ARGV[4])
local floor = tonumber(ARGV[5])
if tonumber(redis.call('GET', base .. 'seq') or '0') < floor then
  redis.call('SET', base .. 'seq', int(floor))
  emit('{"s":' .. int(floor) .. ',"k":"n"}')
end
redis.call('SET', base .. 'epoch', ARGV[8], 'NX')
sweep()
local want = {}
for i = 9, #ARGV, 3 do want[ARGV[i]] = true end
for _, k in ipairs(redis.call('SMEMBERS', base .. 'm:' .. inst)) do
  if not want[k] then leave(inst, k) end
end
local lost = {}
for i = 9, #ARGV, 3 do
  local owner = redis.call('HGET', base .. 'owner', ARGV[i])
  if not owner then
    join(inst, ARGV[i], ARGV[i + 1], ARGV[i + 2])
  elseif owner ~= inst then
    lost[#lost + 1] = ARGV[i + 1]
  end
end

local epoch = redis.call('GET', base .. 'epoch')
local seq = tonumber(redis.call('GET', base .. 'seq') or '0')
local last = tonumber(ARGV[6])
if #lost == 0 and epoch == ARGV[7] then
  if seq == last then return {lost, epoch, int(seq), 'e', {}} end
  -- Walk the log back to the first event after the last one delivered.
  local log = redis.call('LRANGE', base .. 'log', 0, -1)
  local first = #log + 1
  while first > 1 and tonumber(string.match(log[first - 1], '^{"s":(%d+)')) > last do
    first = first - 1
  end
  if first <= #log and tonumber(string.match(log[first], '^{"s":(%d+)')) == last + 1 then
    local events = {}
    for i = first, #log do events[#events + 1] = log[i] end
    return {lost, epoch, int(seq), 'e', events}
  end
end
local names, profs = {}, {}
for i, k in ipairs(redis.call('ZRANGE', base .. 'order', 0, -1)) do
  names[i] = redis.call('HGET', base .. 'names', k)
  profs[i] = redis.call('HGET', base .. 'profs', k) or ''
end
local restr = {}
for _, r in ipairs(redis.call('SMEMBERS', base .. 'restr')) do
  local ev = redis.call('GET', base .. r)
  if ev then restr[#restr + 1] = ev else redis.call('SREM', base .. 'restr', r) end
end
return {lost, epoch, int(seq), 's', names, redis.call('LRANGE', base .. 'hist', 0, -1), restr, profs}
`)

// moderateScript records and publishes a moderation action. ARGV: 3
// action (kick, ban, unban, mute or unmute), 4 name key, 5 name, 6 reason,
// 7 for ban and mute: their TTL in ms, 8 and their end in Unix ms. A ban
// or mute is kept in ban:<key> or mute:<key>, which expires with it, and
// indexed in restr, whose entries of expired keys go on every ban or mute.
// Returns 1, or 0 for a kick of a name nobody holds.
var moderateScript = script(`
local act, key, name = ARGV[3], ARGV[4], ARGV[5]
if act == 'kick' then
  name = redis.call('HGET', base .. 'names', key)
  if not name then return 0 end
end
local seq = redis.call('INCR', base .. 'seq')
local ev = '{"s":' .. int(seq) .. ',"k":"x","a":"' .. act .. '","u":' .. cjson.encode(name) ..
  ',"r":' .. cjson.encode(ARGV[6]) .. ',"e":' .. ARGV[8] .. '}'
if act == 'ban' or act == 'mute' then
  for _, r in ipairs(redis.call('SMEMBERS', base .. 'restr')) do
    if redis.call('EXISTS', base .. r) == 0 then redis.call('SREM', base .. 'restr', r) end
  end
  redis.call('SET', base .. act .. ':' .. key, ev, 'PX', ARGV[7])
  redis.call('SADD', base .. 'restr', act .. ':' .. key)
elseif act == 'unban' or act == 'unmute' then
  local r = string.sub(act, 3) .. ':' .. key
  redis.call('DEL', base .. r)
  redis.call('SREM', base .. 'restr', r)
end
emit(ev)
return 1
`)

// closeScript releases every name of the instance and drops its heartbeat.
// ARGV: 3 instance.
var closeScript = script(`
leaveAll(ARGV[3])
redis.call('DEL', base .. 'hb:' .. ARGV[3])
return 1
`)
