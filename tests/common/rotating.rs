//! A project on PostgreSQL with a provider that rotates refresh tokens
//! (tests/servers/rotating.js): what the PostgreSQL tests share.

use super::pg::Postgres;
use super::{NodeServer, Project, Served};
use serde_json::json;

pub const CLIENT_ID: &str = "pg-client-7Hq2";
pub const CLIENT_SECRET: &str = "pg-client-secret-Zx81-very-private";

/// A project whose `dev` environment lives in a database of its own.
pub struct PgProject {
    pub project: Project,
    pub url: String,
    pub db: String,
}

impl PgProject {
    pub fn new(pg: &Postgres, db: &str) -> PgProject {
        let project = Project::new();
        let url = pg.new_database(db);
        let p = PgProject {
            project,
            url,
            db: db.to_string(),
        };
        let init = p
            .svc()
            .args(["secret", "init", "--env", "dev", "--recipient"])
            .arg(&p.project.key.public)
            .run();
        assert_eq!(init.status, 0, "{}", init.all_output());
        p
    }

    /// `svc` in the project, on the database.
    pub fn svc(&self) -> super::Svc {
        self.project.svc().env("SVC_BACKEND", &self.url)
    }

    pub fn set(&self, name: &str, value: &str) {
        let run = self
            .svc()
            .args(["secret", "set", name, "--env", "dev"])
            .stdin(value)
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
    }

    pub fn get(&self, name: &str) -> String {
        let run = self
            .svc()
            .args(["secret", "get", name, "--env", "dev"])
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
        run.stdout.trim_end_matches('\n').to_string()
    }

    pub fn serve(&self, extra: &[&str]) -> Served {
        let mut args = vec!["--env", "dev", "--backend", &self.url];
        args.extend_from_slice(extra);
        self.project.serve(&args)
    }

    pub fn key(&self, identity: &str) -> String {
        let run = self
            .svc()
            .args(["key", "create", "--as", identity, "--env", "dev"])
            .args(["--program", "."])
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
        run.stdout.trim().to_string()
    }
}

pub const ROTATING: &str = r#"
secret CLIENT_ID     { environment_specific }
secret CLIENT_SECRET { environment_specific locked }
secret REFRESH_TOKEN { environment_specific }
secret ACCESS_TOKEN  { environment_specific }

role refresher {
  grant run vendor.refresh
  grant read_secret ACCESS_TOKEN
  grant update_secret ACCESS_TOKEN
  grant update_secret REFRESH_TOKEN
}

service_account nightly { roles refresher }

service vendor {
  var token: string
  var next: string

  action refresh {
    if param.pause == "yes" {
      sleep 3s
    }
    web_request {
      method POST
      url "TOKEN_ENDPOINT"
      form {
        grant_type    = "refresh_token"
        client_id     = secret.CLIENT_ID
        client_secret = secret.CLIENT_SECRET
        refresh_token = secret.REFRESH_TOKEN
      }
      result_mapping {
        token = $.access_token
        next  = $.refresh_token
      }
    }
    if has_value(next) && has_value(token) {
      update_secrets {
        REFRESH_TOKEN = next
        ACCESS_TOKEN  = token
      }
    }
  }

  endpoint refresh {
    methods GET POST
    log enabled
    process refresh
  }
}
"#;

pub fn rotating_server() -> NodeServer {
    NodeServer::start(
        "rotating",
        json!({"clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}]}),
    )
}

pub fn seed(server: &NodeServer) -> String {
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
        ])
        .arg(json!({"client_id": CLIENT_ID}).to_string())
        .arg(server.url("seed_endpoint"))
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["refresh_token"].as_str().unwrap().to_string()
}

pub fn stats(server: &NodeServer) -> serde_json::Value {
    server.get_json(&server.url("token_endpoint").replace("/token", "/stats"))
}

pub fn active(server: &NodeServer, token: &str) -> bool {
    let (status, answer) = server.post_form(
        &server.url("introspection_endpoint"),
        &[("token", token)],
        None,
    );
    assert_eq!(status, 200);
    answer["active"] == true
}

/// A project on a backend (`None`: files) with the rotating program.
pub fn rotating_project(
    server: &NodeServer,
    pg: Option<(&Postgres, &str)>,
) -> (Project, Option<String>) {
    let project = Project::new();
    let url = pg.map(|(pg, db)| pg.new_database(db));
    let svc = |project: &Project| {
        let mut svc = project.svc();
        if let Some(url) = &url {
            svc = svc.env("SVC_BACKEND", url);
        }
        svc
    };
    if url.is_some() {
        let init = svc(&project)
            .args(["secret", "init", "--env", "dev", "--recipient"])
            .arg(&project.key.public)
            .run();
        assert_eq!(init.status, 0, "{}", init.all_output());
    }
    for (name, value) in [
        ("CLIENT_ID", CLIENT_ID.to_string()),
        ("CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("REFRESH_TOKEN", seed(server)),
    ] {
        let run = svc(&project)
            .args(["secret", "set", name, "--env", "dev"])
            .stdin(value)
            .run();
        assert_eq!(run.status, 0, "{}", run.all_output());
    }
    project.write(
        "vendor.svc",
        &ROTATING.replace("TOKEN_ENDPOINT", &server.url("token_endpoint")),
    );
    (project, url)
}

pub fn stored(project: &Project, url: &Option<String>, name: &str) -> String {
    let mut svc = project.svc();
    if let Some(url) = url {
        svc = svc.env("SVC_BACKEND", url);
    }
    let run = svc.args(["secret", "get", name, "--env", "dev"]).run();
    assert_eq!(run.status, 0, "{}", run.all_output());
    run.stdout.trim().to_string()
}

/// The provider answers each refresh `ms` after it rotated the token: a
/// slow provider whose answer is late once the old token is spent.
pub fn delay_answers(server: &NodeServer, ms: u64) {
    let output = std::process::Command::new("curl")
        .args([
            "-s",
            "-f",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("--data-binary")
        .arg(json!({"answer_delay_ms": ms}).to_string())
        .arg(server.url("token_endpoint").replace("/token", "/config"))
        .output()
        .unwrap();
    assert!(output.status.success(), "POST /config failed");
}

/// A project on database `db` with the rotating program, and its provider.
pub fn rotating_pg(pg: &Postgres, db: &str) -> (NodeServer, PgProject) {
    let server = rotating_server();
    let (project, url) = rotating_project(&server, Some((pg, db)));
    let p = PgProject {
        project,
        url: url.unwrap(),
        db: db.to_string(),
    };
    (server, p)
}

/// Waits until the provider holds `n` refresh requests it received.
pub fn wait_for_requests(server: &NodeServer, n: u64) {
    assert!(
        super::eventually(30, || stats(server)["received_refresh_grants"] == n),
        "the provider never received {n} refresh request(s): {}",
        stats(server)
    );
}
