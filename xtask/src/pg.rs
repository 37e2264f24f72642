//! The PostgreSQL server the tests and the benchmark run against: the one the caller names
//! (`XBHOST_TEST_DATABASE_URL`, `XBHOST_BENCH_DATABASE_URL`), or else a throwaway cluster
//! started here (`initdb` in a temporary directory, as the `postgres` user when we are
//! root, on a free loopback port) and stopped when the run ends, failed or not.

use std::process::Command;

use anyhow::{Result, anyhow};

use crate::pg_cluster::PgCluster;

/// A server for one run; a cluster started here is stopped and deleted when this drops.
pub struct Server {
    /// The admin URL exported to the processes under test.
    pub url: String,
    var: &'static str,
    _cluster: Option<PgCluster>,
}

impl Server {
    /// The server `var` names, or a new throwaway cluster when it is unset.
    pub fn for_var(var: &'static str) -> Result<Server> {
        if let Ok(url) = std::env::var(var)
            && !url.trim().is_empty()
        {
            eprintln!("xtask: PostgreSQL from {var}");
            return Ok(Server {
                url,
                var,
                _cluster: None,
            });
        }
        let cluster = PgCluster::start_new()
            .map_err(|e| anyhow!("starting a throwaway PostgreSQL for {var}: {e}"))?;
        eprintln!(
            "xtask: started a throwaway PostgreSQL ({}) at {} for {var}",
            cluster.version(),
            cluster.admin_url()
        );
        Ok(Server {
            url: cluster.admin_url(),
            var,
            _cluster: Some(cluster),
        })
    }

    /// Gives `cmd` (and the processes it starts) the server's URL.
    pub fn export_to<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env(self.var, &self.url)
    }
}
