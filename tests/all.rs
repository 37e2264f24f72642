//! Every integration test file of this crate, as one test binary (see Cargo.toml): run
//! one file's tests with `cargo test --release -p xbhost-tests --test integration FILE::`.
//! `import_memory` and `event_log_report` keep binaries of their own: they measure a child's
//! peak memory, which starts from this process's size at the fork.

mod authoring_grading;
mod authoring_groups;
mod authoring_import;
mod cli;
mod cli_beside_servers;
mod cli_failures;
mod client_code;
mod coherent_hosts;
mod concurrent_first_visits;
mod database_faults;
mod database_tls;
mod durability;
mod event_log_faults;
mod events_export;
mod experiment_controls;
mod experiment_layers;
mod experiments;
mod hostile_documents;
mod hostile_exports;
mod hostile_imports;
mod leaks;
mod live_loop;
mod module_graph;
mod multi_host;
mod old_exports;
mod pg_costs;
mod pg_schema;
mod plugin_loading;
mod problem_types;
mod python_blocks;
mod randomized_content;
mod real_courses;
mod rendering;
mod report;
mod sandbox;
mod scenarios;
mod server_auth;
mod server_bots;
mod server_rendering;
mod server_requests;
mod server_sign_in;
mod server_uploads;
mod shared_sign_in;
mod shared_tallies;
mod slow_clients;
mod storage_contract;
mod store_copy;
mod store_faults;
mod untrusted;
mod video;
mod video_browser;
mod walkthrough;
mod workbench;
mod xblocks;

/// The YouTube player protocol `video` and `video_browser` both speak (one copy).
#[path = "video_shared/player.rs"]
mod video_player;
