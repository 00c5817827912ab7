; Highlighting of svc programs.
;
; Capture names are nvim-treesitter's, which Zed and the tree-sitter CLI
; read too. queries/helix/highlights.scm is this file with Helix's names,
; written by helix-queries.sh: edit this file, then run the script.
;
; No node is captured by two patterns, so the order of the patterns does
; not matter (Neovim lets the last match win, Helix and the CLI the first).

(comment) @comment

; ------------------------------------------------------------- keywords

[
  "secret"
  "role"
  "user"
  "service_account"
  "service"
  "schedule"
  "oauth_client"
  "notify"
  "events"
  "keep_alive"
  "expiry_warning"
  "var"
  "endpoint"
  "description"
  "refreshed_by"
  "min_valid"
  "grant"
  "run"
  "update_secret"
  "update_secrets"
  "read_secret"
  "read_status"
  "roles"
  "issuer"
  "authorize_url"
  "token_url"
  "device_authorization_url"
  "revocation_url"
  "refresh_token_ttl"
  "client_id"
  "client_auth"
  "client_secret_basic"
  "client_secret_post"
  "private_key_jwt"
  "jwt_bearer"
  "scopes"
  "stores"
  "as"
  "methods"
  "log"
  "process"
  "params"
  "response"
  "status"
  "json"
  "body"
  "reveals"
  "on_failure"
  "on_recovery"
  "update"
  "service_variables"
  "web_request"
  "method"
  "url"
  "query"
  "headers"
  "form"
  "auth"
  "basic"
  "bearer"
  "client"
  "timeout"
  "retry"
  "attempts"
  "max_time"
  "redirects"
  "result_mapping"
  "header"
  "value"
  "expires_in"
  "run_service"
  "into"
  "sleep"
  "every"
  "cron"
  "time_zone"
  "before_expiry"
  "connect"
  "return_to"
  "for_each_connection"
  "concurrency"
  "for_connection"
  "provider"
  "refresh_tokens"
  "client_credentials"
] @keyword

[
  (environment_specific)
  (locked)
  (per_account)
  (log_state)
  (disabled)
  (cross_origin)
  (auth_none)
  (status_source)
  (body_source)
] @keyword

"action" @keyword.function

[
  "if"
  "else"
] @keyword.conditional

[
  "foreach"
  "in"
  "while"
  "max"
  (break_statement)
] @keyword.repeat

[
  "try"
  "catch"
  "throw"
  "web_request_error"
] @keyword.exception

; ------------------------------------------------------ declared names

(secret_declaration
  name: (identifier) @constant)

(role_declaration
  name: (identifier) @type)

(user_declaration
  name: (identifier) @type)

(service_account_declaration
  name: (identifier) @type)

(oauth_client_declaration
  name: (identifier) @type)

(notify_declaration
  name: (identifier) @type)

(service_declaration
  name: (identifier) @module)

(schedule_declaration
  name: (identifier) @label)

(action_declaration
  name: (identifier) @function)

(endpoint_declaration
  name: (identifier) @function)

(var_declaration
  name: (identifier) @variable)

(param_declaration
  name: (identifier) @variable.parameter)

(foreach_loop
  item: (identifier) @variable)

(type_name) @type.builtin

; ---------------------------------------------------- names used

; Secrets, wherever one is named.
(grant
  secret: (identifier) @constant)

(secret_update
  secret: (identifier) @constant)

(before_expiry
  secret: (identifier) @constant)

(token_store
  secret: (identifier) @constant)

(response_reveals
  secret: (identifier) @constant)

(token_store
  field: (identifier) @property)

; Roles, accounts and OAuth clients.
(roles
  role: (identifier) @type)

(refreshed_by
  account: (identifier) @type)

(run_service
  account: (identifier) @type)

(schedule_account
  account: (identifier) @type)

(auth_client
  client: (identifier) @type)

(grant
  client: (identifier) @type)

(for_each_connection
  client: (identifier) @type)

; A client's provider profile, one of svc's own: `provider microsoft`.
(client_provider
  provider: (identifier) @type.builtin)

; Endpoints: `SERVICE.ENDPOINT`, `SERVICE.*`.
(endpoint_ref
  service: (identifier) @module
  endpoint: (identifier) @function)

(endpoint_pattern
  service: (identifier) @module)

(endpoint_pattern
  endpoint: (identifier) @function)

(wildcard) @punctuation.special

(process
  action: (identifier) @function)

; Where a value is written to.
(assignment
  name: (identifier) @variable)

(mapping
  target: (identifier) @variable)

(run_service
  into: (identifier) @variable)

(field
  name: (identifier) @property)

(argument
  name: (identifier) @variable.parameter)

(http_method) @constant

(event_name) @constant

; --------------------------------------------------------- expressions

(variable) @variable

(call
  function: (identifier) @function.call)

[
  "secret."
  "param."
  "error."
  "run."
  "connection."
] @variable.builtin

(secret_ref
  name: (identifier) @constant)

(param_ref
  name: (identifier) @variable.parameter)

(error_ref
  name: (identifier) @variable.member)

(run_ref
  name: (identifier) @variable.member)

(connection_ref
  field: (identifier) @variable.member)

(connection_ref
  key: (identifier) @property)

(string) @string

(escape_sequence) @string.escape

; The `}` that ends an interpolation is a bracket like any other.
"${" @punctuation.special

(jsonpath) @string.special

[
  (number)
  (integer)
  (duration)
  (status_code)
] @number

(boolean) @boolean

(null) @constant.builtin

; -------------------------------------------------------- punctuation

[
  "="
  "=="
  "!="
  "<"
  "<="
  ">"
  ">="
  "&&"
  "||"
  "!"
  "+"
  "-"
  "*"
  "/"
  "?"
] @operator

[
  "{"
  "}"
  "("
  ")"
] @punctuation.bracket

[
  ","
  ":"
  "."
] @punctuation.delimiter
