-- Run by bench/lsp_nvim.sh inside `nvim --headless -u NONE`, with the file
-- to edit as the current buffer: starts `svc lsp` through Neovim's own LSP
-- client (0.7: vim.lsp.start_client + vim.lsp.buf_attach_client), edits the
-- buffer with nvim_buf_set_text and times each edit to the receipt of the
-- buffer's new diagnostics (textDocument/publishDiagnostics). See the
-- header of bench/lsp_nvim.sh.
--
-- Input (environment): SVC_BENCH_SVC (the svc binary), SVC_BENCH_ROOT (the
-- workspace folder), SVC_BENCH_EDITS, SVC_BENCH_WARMUP (even numbers),
-- SVC_BENCH_DEBOUNCE (flags.debounce_text_changes, ms), SVC_BENCH_RESULT
-- (where to write the result).
--
-- Output: SVC_BENCH_RESULT, one record a line, `key value ...`:
--   meta KEY VALUE             facts of the run
--   sample DIR TOTAL SEND      one timed edit: DIR insert|delete, TOTAL the
--                              ns from just before nvim_buf_set_text to the
--                              publish handler's receipt, SEND the ns from
--                              the same start to the didChange handed to
--                              the pipe
--   handler NS                 time in Neovim's own publish handler (all edits)
--   error TEXT                 something went wrong: the run is invalid
--   done                       the script got to its end

local uv = vim.loop
local api = vim.api

local out = {}
local errors = 0
local function record(...)
  local parts = {}
  for i = 1, select('#', ...) do
    parts[#parts + 1] = tostring(select(i, ...))
  end
  out[#out + 1] = table.concat(parts, ' ')
end
local function fail(text)
  errors = errors + 1
  record('error', (tostring(text):gsub('\n', ' | ')))
end
local function ms(ns)
  return string.format('%.3f', ns / 1e6)
end

local EDIT_TIMEOUT_MS = 10000
local STARTUP_TIMEOUT_MS = 120000
local UNDECLARED = 'svc::secret::undeclared'
local MARKER = '// service '

local function main()
  local svc = assert(vim.env.SVC_BENCH_SVC, 'SVC_BENCH_SVC is not set')
  local root = assert(vim.env.SVC_BENCH_ROOT, 'SVC_BENCH_ROOT is not set')
  local edits = tonumber(vim.env.SVC_BENCH_EDITS or '100')
  local warmup = tonumber(vim.env.SVC_BENCH_WARMUP or '2')
  local debounce = tonumber(vim.env.SVC_BENCH_DEBOUNCE or '0')

  local buf = api.nvim_get_current_buf()
  local path = uv.fs_realpath(api.nvim_buf_get_name(buf))
  -- The languageId of didOpen is the buffer's file type (none with -u NONE).
  vim.bo[buf].filetype = 'svc'
  record('meta', 'nvim', tostring(vim.version().major) .. '.' .. vim.version().minor .. '.' .. vim.version().patch)
  record('meta', 'file', path)
  record('meta', 'lines', api.nvim_buf_line_count(buf))
  record('meta', 'debounce_text_changes', debounce)

  -- Where the edit goes: the middle service of the file, as bench/lsp_latency.py.
  local lines = api.nvim_buf_get_lines(buf, 0, -1, true)
  local markers = {}
  for n, line in ipairs(lines) do
    if line:sub(1, #MARKER) == MARKER then
      markers[#markers + 1] = n
    end
  end
  assert(#markers > 0, 'no `// service` line in the file')
  local start = markers[math.floor(#markers / 2) + 1]
  local number = tonumber(lines[start]:sub(#MARKER + 1))
  local name = string.format('S%d_REFRESH_TOKEN', number)
  local wanted = 'update_secret ' .. name .. ' = new_refresh_token'
  local row, col
  for n = start, #lines do
    local at = lines[n]:find(wanted, 1, true)
    if at then
      row, col = n - 1, at - 1 + #('update_secret ' .. name) -- 0-based, after the name
      break
    end
  end
  assert(row, 'no `' .. wanted .. '` line after `// service ' .. number .. '`')
  lines = nil
  record('meta', 'service', number)
  record('meta', 'position', row, col)

  -- Every publishDiagnostics for the buffer, in order of receipt.
  local publishes = {} -- { at = hrtime, count = n, diagnostics = list, version = v }
  local other_uris = 0
  local handler_ns = {}
  local original = vim.lsp.handlers['textDocument/publishDiagnostics']
  vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
    local at = uv.hrtime()
    local mine = result and result.uri and uv.fs_realpath(vim.uri_to_fname(result.uri)) == path
    if mine then
      publishes[#publishes + 1] = {
        at = at,
        count = #(result.diagnostics or {}),
        diagnostics = result.diagnostics,
        version = result.version,
      }
    else
      other_uris = other_uris + 1
    end
    local value = original(err, result, ctx, config)
    if mine then
      handler_ns[#handler_ns + 1] = uv.hrtime() - at
    end
    return value
  end

  local exited
  local initialized_at
  local started_at = uv.hrtime()
  local id = vim.lsp.start_client({
    name = 'svc',
    cmd = { svc, 'lsp' },
    root_dir = root,
    -- Neovim 0.7 sends didChange 150 ms after an edit by default; 0 sends it at once.
    flags = { debounce_text_changes = debounce },
    on_init = function()
      initialized_at = uv.hrtime()
    end,
    on_exit = function(code, signal)
      exited = string.format('code %s, signal %s', tostring(code), tostring(signal))
    end,
  })
  assert(id, 'vim.lsp.start_client failed')
  assert(vim.lsp.buf_attach_client(buf, id), 'vim.lsp.buf_attach_client failed')
  local client = vim.lsp.get_client_by_id(id)

  -- The first publish for the buffer: the server's answer to didOpen.
  local ok = vim.wait(STARTUP_TIMEOUT_MS, function()
    return #publishes > 0 or exited ~= nil
  end, 5)
  if exited then
    error('svc lsp exited before it published diagnostics for the buffer: ' .. exited)
  elseif not ok then
    error(string.format('no diagnostics for the buffer %d s after the start', STARTUP_TIMEOUT_MS / 1000))
  end
  record('meta', 'start_to_initialized_ms', initialized_at and ms(initialized_at - started_at) or 'nil')
  record('meta', 'start_to_first_publish_ms', ms(publishes[1].at - started_at))
  -- The server answers in order: the answer to a request (one it does not
  -- know, the cheapest) comes after everything it had to publish at the
  -- start, so nothing from the opening arrives during the edits.
  local synced = false
  client = vim.lsp.get_client_by_id(id)
  client.request('svc/benchSync', vim.NIL, function()
    synced = true
  end, buf)
  if not vim.wait(STARTUP_TIMEOUT_MS, function() return synced or exited ~= nil end, 5) or not synced then
    error('no answer to a request after the opening (server exit: ' .. tostring(exited) .. ')')
  end
  local baseline = publishes[#publishes].count
  record('meta', 'publishes_for_buffer_at_start', #publishes)
  record('meta', 'publishes_for_other_files_at_start', other_uris)
  record('meta', 'baseline_diagnostics', baseline)
  local sync = client.resolved_capabilities and client.resolved_capabilities.text_document_did_change
  record('meta', 'text_document_sync', ({ [0] = 'none', [1] = 'full', [2] = 'incremental' })[sync] or tostring(sync))

  -- When each didChange is handed to the pipe (after Neovim's debounce),
  -- and what else the client sends during the edits.
  local notified_at
  local sent = {}
  local notify = client.notify
  client.notify = function(method, params)
    if method == 'textDocument/didChange' then
      notified_at = uv.hrtime()
    end
    sent[method] = (sent[method] or 0) + 1
    return notify(method, params)
  end

  local other_before = other_uris
  local total = warmup + edits
  for k = 1, total do
    local insert = k % 2 == 1
    local direction = insert and 'insert' or 'delete'
    local expected = insert and baseline + 1 or baseline
    local seen = #publishes
    notified_at = nil
    local t0 = uv.hrtime()
    if insert then
      api.nvim_buf_set_text(buf, row, col, row, col, { 'X' })
    else
      api.nvim_buf_set_text(buf, row, col, row, col + 1, { '' })
    end
    local answer -- the first publish after the edit with the expected count
    local wrong = {}
    local arrived = vim.wait(EDIT_TIMEOUT_MS, function()
      while seen < #publishes do
        seen = seen + 1
        local p = publishes[seen]
        if p.count == expected then
          answer = p
          return true
        end
        wrong[#wrong + 1] = p.count
      end
      return exited ~= nil
    end, 1)
    if exited then
      error('svc lsp exited during the edits: ' .. exited)
    end
    if not arrived or not answer then
      fail(string.format('edit %d (%s): no publish with %d diagnostics within %d s (counts seen: %s)',
        k, direction, expected, EDIT_TIMEOUT_MS / 1000, table.concat(wrong, ',')))
      break -- the buffer and the server may no longer agree: stop here
    end
    if #wrong > 0 then
      fail(string.format('edit %d (%s): publishes with the wrong count before the expected %d: %s',
        k, direction, expected, table.concat(wrong, ',')))
    end
    if insert then
      -- The new diagnostic is the undeclared secret, on the edited line.
      local found = false
      for _, d in ipairs(answer.diagnostics) do
        if d.code == UNDECLARED and (d.message or ''):find(name .. 'X', 1, true)
          and d.range.start.line == row then
          found = true
        end
      end
      if not found then
        fail(string.format('edit %d (insert): no `%s` error for %sX on line %d: %s',
          k, UNDECLARED, name, row, (vim.inspect(answer.diagnostics):gsub('%s+', ' '))))
      end
    end
    if k > warmup then
      record('sample', direction, answer.at - t0, notified_at and (notified_at - t0) or -1)
    end
  end
  record('meta', 'publishes_for_other_files_during_edits', other_uris - other_before)
  local names = {}
  for method, count in pairs(sent) do
    names[#names + 1] = method .. '=' .. count
  end
  table.sort(names)
  record('meta', 'notifications_sent_during_edits', #names > 0 and table.concat(names, ',') or 'none')
  for _, ns in ipairs(handler_ns) do
    record('handler', ns)
  end

  -- The buffer is as it was opened (after an even number of edits).
  local line = api.nvim_buf_get_lines(buf, row, row + 1, true)[1]
  if line:sub(col - #name + 1, col + 1) ~= name .. ' ' then
    fail('the edited line is not back to its opening text: ' .. line)
  end

  local stopped = false
  client.notify = notify
  vim.lsp.stop_client(id)
  stopped = vim.wait(5000, function() return exited ~= nil end, 10)
  record('meta', 'server_exit', stopped and exited or 'did not exit within 5 s of shutdown')
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  fail(err)
end
record('done')
vim.fn.writefile(out, vim.env.SVC_BENCH_RESULT or 'lsp_nvim.result')
vim.cmd('qall!')
