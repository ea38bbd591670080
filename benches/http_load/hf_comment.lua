-- wrk script for benches/http_load.sh: every request is a fresh ~1 KiB
-- Hugging Face `discussion.comment` delivery (the Hub's documented payload,
-- compact) with `X-Webhook-Secret`. A counter in the comment text makes each
-- body, and so each delivery id (the body's SHA-256), new.
--
-- Script arguments (after `--`): SECRET NONCE. The nonce keeps the warm-up
-- and the measured run from sending the same bodies.

local secret = "hookroom-bench-secret"
local nonce = "0"
local counter = 0

local head = '{"event":{"action":"create","scope":"discussion.comment"},'
  .. '"repo":{"type":"model","name":"some-user/some-repo","id":"6366c000a2abcdf2fd69a080",'
  .. '"private":false,"url":{"web":"https://huggingface.co/some-user/some-repo",'
  .. '"api":"https://huggingface.co/api/models/some-user/some-repo"},'
  .. '"owner":{"id":"61d2000c3c2083e1c08af22d"}},'
  .. '"discussion":{"id":"639885d811ae2bad2b7ba461",'
  .. '"title":"Model card is missing the evaluation results",'
  .. '"url":{"web":"https://huggingface.co/some-user/some-repo/discussions/3",'
  .. '"api":"https://huggingface.co/api/models/some-user/some-repo/discussions/3"},'
  .. '"status":"open","author":{"id":"61d2000c3c2083e1c08af22d"},"num":3,"isPullRequest":false},'
  .. '"comment":{"id":"6398872887bfcfb93a306f18","author":{"id":"6398861a2f4c1b0e7d9a3c55"},'
  .. '"content":"@discussion-bot could you add the eval table from the paper to the model card? '
  .. 'The README only lists the training setup right now. (bench '
local tail = ')","hidden":false,'
  .. '"url":{"web":"https://huggingface.co/some-user/some-repo/discussions/3#6398872887bfcfb93a306f18"}},'
  .. '"webhook":{"id":"6390e855e30d9209411de93b","version":3}}'

function init(args)
  if args[1] then secret = args[1] end
  if args[2] then nonce = args[2] end
end

function request()
  counter = counter + 1
  local body = head .. nonce .. "-" .. counter .. tail
  return wrk.format("POST", wrk.path, {
    ["Content-Type"] = "application/json",
    ["X-Webhook-Secret"] = secret,
    ["User-Agent"] = "huggingface-hub-webhooks",
  }, body)
end

-- One machine-readable line: requests/s, p50 and p99 in ms, requests,
-- answers that were not 2xx/3xx, socket errors.
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d %d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
