#!/usr/bin/env python3
"""Writes a .svc program with N services, for measuring `svc check`.

Each service has the shape of the HubSpot example: its own secrets, a role,
a service account, a refresh action with a web request, result mapping and
guarded secret updates, an endpoint and a schedule; and the expressions of the
language: arithmetic on times and durations, string functions and an HMAC.
The output checks clean.

usage: bench/gen_services.py N [--plain] > services.svc

--plain leaves the expressions out: the template before them, so the two can
be compared (bench/check_linearity.py).
"""

import sys

TEMPLATE = """\
// service {i}
secret S{i}_CLIENT_ID     {{ environment_specific }}
secret S{i}_CLIENT_SECRET {{ environment_specific locked }}
secret S{i}_REFRESH_TOKEN {{ environment_specific }}
secret S{i}_ACCESS_TOKEN  {{ environment_specific }}

role refresher_{i} {{
  grant run svc_{i}.refresh
  grant update_secret S{i}_ACCESS_TOKEN
  grant update_secret S{i}_REFRESH_TOKEN
}}

service_account bot_{i} {{ roles refresher_{i} }}

service svc_{i} {{
  var token: string
  var new_refresh_token: string
  var expires_in: number
  var deadline: time
  var signature: string

  action refresh_access_token {{
    update service_variables {{
      token = null
      new_refresh_token = null
      expires_in = null
      deadline = now() + 2 * 30s
      signature = hmac_sha256(secret.S{i}_CLIENT_ID, "svc-" + lower(trim(" S{i} ")) + "." + string(unix(deadline)))
    }}

    web_request {{
      method POST
      url "https://auth{i}.example.com/oauth/v1/token"
      headers {{
        "Accept"      = "application/json"
        "X-Signature" = signature
      }}
      form {{
        grant_type    = "refresh_token"
        client_id     = secret.S{i}_CLIENT_ID
        client_secret = secret.S{i}_CLIENT_SECRET
        refresh_token = secret.S{i}_REFRESH_TOKEN
      }}
      timeout 10s
      result_mapping {{
        token             = $.access_token
        new_refresh_token = $.refresh_token
        expires_in        = $.expires_in
      }}
    }}

    if has_value(new_refresh_token) {{
      update_secret S{i}_REFRESH_TOKEN = new_refresh_token
    }}
    if has_value(token) && now() < deadline + 1m {{
      update_secret S{i}_ACCESS_TOKEN {{
        value      = token
        expires_in = expires_in
      }}
    }}
  }}

  endpoint refresh {{
    description "Refresh the token of service {i}"
    methods GET POST
    log enabled
    process refresh_access_token
  }}
}}

schedule nightly_{i} {{
  endpoint svc_{i}.refresh
  service_account bot_{i}
  every 24h
}}

"""


PLAIN = """\
// service {i}
secret S{i}_CLIENT_ID     {{ environment_specific }}
secret S{i}_CLIENT_SECRET {{ environment_specific locked }}
secret S{i}_REFRESH_TOKEN {{ environment_specific }}
secret S{i}_ACCESS_TOKEN  {{ environment_specific }}

role refresher_{i} {{
  grant run svc_{i}.refresh
  grant update_secret S{i}_ACCESS_TOKEN
  grant update_secret S{i}_REFRESH_TOKEN
}}

service_account bot_{i} {{ roles refresher_{i} }}

service svc_{i} {{
  var token: string
  var new_refresh_token: string
  var expires_in: number

  action refresh_access_token {{
    update service_variables {{
      token = null
      new_refresh_token = null
      expires_in = null
    }}

    web_request {{
      method POST
      url "https://auth{i}.example.com/oauth/v1/token"
      headers {{ "Accept" = "application/json" }}
      form {{
        grant_type    = "refresh_token"
        client_id     = secret.S{i}_CLIENT_ID
        client_secret = secret.S{i}_CLIENT_SECRET
        refresh_token = secret.S{i}_REFRESH_TOKEN
      }}
      timeout 10s
      result_mapping {{
        token             = $.access_token
        new_refresh_token = $.refresh_token
        expires_in        = $.expires_in
      }}
    }}

    if has_value(new_refresh_token) {{
      update_secret S{i}_REFRESH_TOKEN = new_refresh_token
    }}
    if has_value(token) {{
      update_secret S{i}_ACCESS_TOKEN {{
        value      = token
        expires_in = expires_in
      }}
    }}
  }}

  endpoint refresh {{
    description "Refresh the token of service {i}"
    methods GET POST
    log enabled
    process refresh_access_token
  }}
}}

schedule nightly_{i} {{
  endpoint svc_{i}.refresh
  service_account bot_{i}
  every 24h
}}

"""


def main() -> None:
    args = sys.argv[1:]
    plain = "--plain" in args
    args = [a for a in args if a != "--plain"]
    if len(args) != 1 or not args[0].isdigit():
        sys.exit(__doc__)
    template = PLAIN if plain else TEMPLATE
    out = sys.stdout
    for i in range(int(args[0])):
        out.write(template.format(i=i))


if __name__ == "__main__":
    main()
