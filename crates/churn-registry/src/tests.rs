//! The registry's conformance suite: every test, the property test included, runs on both
//! configurations (the pattern of quickwit's `metastore_test_suite!`): the embedded one, a
//! real SQLite file and an artifact directory in a temporary directory; and the replicated
//! one, a fresh database of a real PostgreSQL server (`CHURNSERVE_TEST_POSTGRES_URL`) with
//! artifacts under a fresh prefix of a bucket of a real S3-compatible server
//! (`CHURNSERVE_TEST_S3_BUCKET` with the `AWS_*` variables). When those variables are not
//! set, `postgres_s3_suite_on_servers_of_its_own` starts both servers with the project's
//! scripts and runs the replicated half again in a child process that has them, so that
//! plain `cargo test` covers both halves with nothing set.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::Connection;

use super::*;

mod cohorts;
mod splits;
use cohorts::*;
use splits::*;

/// A registry location for one test: its own temporary data directory, and its own
/// database on the backend under test.
struct Store {
    dir: tempfile::TempDir,
    location: Location,
}

impl Store {
    async fn new(backend: Backend) -> Store {
        let dir = tempfile::tempdir().expect("tempdir");
        let (registry_url, artifact_store) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => (
                Some(fresh_postgres_database().await),
                Some(fresh_bucket_prefix()),
            ),
        };
        let location = Location::new(
            dir.path(),
            registry_url.as_deref(),
            artifact_store.as_deref(),
        )
        .expect("location");
        Store { dir, location }
    }

    async fn open(&self) -> Registry {
        Registry::connect(&self.location).await.expect("open")
    }

    async fn check(&self) -> Vec<Finding> {
        check(&self.location).await.expect("check")
    }

    /// The artifact store as the registry sees it, for reading and writing behind its back.
    async fn artifacts(&self) -> ArtifactStore {
        ArtifactStore::at(&self.location.artifacts, self.dir.path(), 1 << 30)
            .await
            .expect("artifact store")
    }

    /// The names of the stored artifacts of one kind.
    async fn artifact_names(&self, kind: ArtifactKind) -> Vec<String> {
        let mut names: Vec<String> = self
            .artifacts()
            .await
            .stored(kind)
            .await
            .expect("list")
            .into_iter()
            .map(|sha256| kind.file_name(&sha256))
            .collect();
        names.sort();
        names
    }

    /// Uploads left behind: staging files and, in an object store, temporary keys.
    async fn unfinished_uploads(&self) -> Vec<(String, bool)> {
        self.artifacts()
            .await
            .unfinished_uploads()
            .await
            .expect("uploads")
    }
}

const POSTGRES_URL: &str = "CHURNSERVE_TEST_POSTGRES_URL";
const S3_BUCKET: &str = "CHURNSERVE_TEST_S3_BUCKET";

/// Whether this process was given a PostgreSQL server and an S3 bucket; without them the
/// replicated half runs in a child process (see the module's comment).
fn replicated_servers_are_set() -> bool {
    std::env::var_os(POSTGRES_URL).is_some() && std::env::var_os(S3_BUCKET).is_some()
}

/// Whether a test of `backend` does not run in this process.
fn skipped(backend: Backend) -> bool {
    backend == Backend::Postgres && !replicated_servers_are_set()
}

/// A PostgreSQL cluster and an S3-compatible server started by the project's scripts in a
/// temporary directory, stopped when dropped.
struct OwnServers {
    dir: tempfile::TempDir,
}

impl OwnServers {
    fn script(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts")
            .join(name)
    }

    fn run(script: &str, command: &str, dir: &std::path::Path) -> Result<String, String> {
        let output = std::process::Command::new(Self::script(script))
            .arg(command)
            .arg(dir)
            .output()
            .map_err(|e| format!("{script}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{script} {command}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The servers and the variables that name them, or why they could not start.
    fn start() -> Result<(OwnServers, Vec<(String, String)>), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        // The cluster runs as the `postgres` user when we are root: it must enter the folder.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| e.to_string())?;
        let servers = OwnServers { dir };
        let url = Self::run("postgres.sh", "start", &servers.dir.path().join("postgres"))?;
        let exports = Self::run("s3.sh", "start", &servers.dir.path().join("s3"))?;
        let mut variables: Vec<(String, String)> = exports
            .lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        variables.push((POSTGRES_URL.to_owned(), url.trim().to_owned()));
        Ok((servers, variables))
    }
}

impl Drop for OwnServers {
    fn drop(&mut self) {
        let postgres = self.dir.path().join("postgres");
        if postgres.join("url").exists() {
            let _ = Self::run("postgres.sh", "stop", &postgres);
        }
        let _ = Self::run("s3.sh", "stop", &self.dir.path().join("s3"));
    }
}

#[test]
fn postgres_s3_suite_on_servers_of_its_own() {
    if replicated_servers_are_set() {
        // The suite's `postgres_s3` tests run in this process, on the servers named.
        return;
    }
    let (servers, variables) = match OwnServers::start() {
        Ok(started) => started,
        Err(why) => {
            eprintln!(
                "SKIPPED: the registry's PostgreSQL + S3 conformance suite: cannot start the \
                 servers ({why}); `scripts/test.sh rust` runs it"
            );
            return;
        }
    };
    let status = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["tests::postgres_s3::", "--test-threads", "2"])
        .envs(variables)
        .status()
        .expect("run the replicated half");
    drop(servers);
    assert!(
        status.success(),
        "the PostgreSQL + S3 conformance suite failed: {status}"
    );
}

/// A fresh key prefix in the test bucket.
fn fresh_bucket_prefix() -> String {
    let bucket = std::env::var(S3_BUCKET).expect("checked by replicated_servers_are_set");
    format!("s3://{bucket}/{}", uuid::Uuid::new_v4().simple())
}

/// Creates an empty database on the test server and returns its URL.
async fn fresh_postgres_database() -> String {
    let admin = std::env::var(POSTGRES_URL).expect("checked by replicated_servers_are_set");
    let name = format!("registry_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut connection)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&admin).expect("CHURNSERVE_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// The suite: each named test function, taking a fresh [`Store`] of the backend, becomes a
/// test in module `sqlite` and one in module `postgres`; each named property (a function of
/// the backend that runs its own runtime) likewise.
macro_rules! conformance_suite {
    (tests: [$($test:ident),* $(,)?], properties: [$($property:ident),* $(,)?]) => {
        conformance_suite!(@backend sqlite_directory, Backend::Sqlite, [$($test),*], [$($property),*]);
        conformance_suite!(@backend postgres_s3, Backend::Postgres, [$($test),*], [$($property),*]);
    };

    (@backend $module:ident, $backend:expr, [$($test:ident),*], [$($property:ident),*]) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if skipped($backend) {
                        return;
                    }
                    super::$test(Store::new($backend).await).await
                }
            )*
            $(
                #[test]
                fn $property() {
                    if skipped($backend) {
                        return;
                    }
                    super::$property($backend)
                }
            )*
        }
    };
}

conformance_suite!(
    tests: [
        the_offline_check_finds_writes_that_bypassed_the_registry,
        versions_are_numbered_per_model_and_aliases_move_in_the_same_transaction,
        concurrent_registrations_get_distinct_gap_free_versions,
        a_refused_registration_leaves_nothing_behind,
        shadows_are_audited_replaced_deleted_and_their_scores_kept,
        alias_and_archive_rules,
        reopening_keeps_everything_and_removes_what_a_crash_left,
        datasets_are_counted_unique_and_checked,
        the_audit_log_refuses_updates_and_deletes,
        audit_pages_are_newest_first_and_by_name,
        evaluations_are_listed_newest_first_with_each_versions_latest_roc_auc,
        logged_predictions_are_labelled_by_the_first_outcome_in_the_horizon,
        thresholds_and_timestamps_keep_their_precision,
        seeding_is_claimed_once_and_never_on_a_used_registry,
        traffic_splits_are_set_reweighted_ended_and_audited,
        malformed_splits_are_refused_naming_the_field,
        predictions_are_read_by_the_alias_they_came_through,
        performance_sums_equal_the_join_on_random_logs,
        a_customer_scored_again_and_again_keeps_a_few_folded_rows_a_day,
    ],
    properties: [concurrent_writes_keep_numbering_gap_free_and_aliases_valid]
);

fn actor() -> Actor {
    Actor("test".to_owned())
}

fn new_version(name: &str, aliases: &[&str]) -> NewVersion {
    NewVersion {
        name: name.to_owned(),
        metadata: VersionMetadata {
            description: "a test model".to_owned(),
            tags: BTreeMap::from([("team".to_owned(), "retention".to_owned())]),
            feature_names: Vec::new(),
            features: vec![FeatureRecord {
                name: "tenure".to_owned(),
                kind: "number".to_owned(),
                allowed_values: Vec::new(),
            }],
            class_labels: vec!["0".to_owned(), "1".to_owned()],
            positive_class: "1".to_owned(),
            threshold: 0.5,
            risk_band_cuts: [0.3, 0.6],
            reference_dataset: String::new(),
            producer: "test".to_owned(),
        },
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
    }
}

async fn staged(registry: &Registry, kind: ArtifactKind, bytes: &[u8]) -> Staged {
    let mut staging = registry.stage(kind, 1 << 20).await.expect("stage");
    staging.write(bytes).await.expect("write");
    staging.finish().await.expect("finish")
}

async fn register(
    registry: &Registry,
    name: &str,
    bytes: &[u8],
    aliases: &[&str],
) -> Result<VersionRecord, RegistryError> {
    let upload = staged(registry, ArtifactKind::Model, bytes).await;
    registry
        .register(new_version(name, aliases), upload, &actor())
        .await
}

/// A registry with "churn" versions 1 (aliased `production`) and 2.
async fn two_versions(store: &Store) -> Registry {
    let registry = store.open().await;
    register(&registry, "churn", b"model one", &["production"])
        .await
        .expect("v1");
    register(&registry, "churn", b"model two", &[])
        .await
        .expect("v2");
    registry
}

#[derive(Debug, Clone)]
enum Write {
    Register(usize),
    SetAlias(usize, usize, u32),
    Archive(usize, u32),
}

const NAMES: [&str; 2] = ["churn", "upsell"];
const ALIASES: [&str; 2] = ["production", "staging"];

fn write() -> impl proptest::strategy::Strategy<Value = Write> {
    use proptest::prelude::*;
    prop_oneof![
        (0..2usize).prop_map(Write::Register),
        (0..2usize, 0..2usize, 1..5u32).prop_map(|(n, a, v)| Write::SetAlias(n, a, v)),
        (0..2usize, 1..5u32).prop_map(|(n, v)| Write::Archive(n, v)),
    ]
}

/// Runs one lane of writes in order; returns how many versions it registered per name.
/// Refusals (unknown version, archived target, aliased version) are expected; a storage
/// error is not.
async fn run_lane(registry: Arc<Registry>, lane: usize, writes: Vec<Write>) -> [u32; 2] {
    let mut registered = [0; 2];
    for (i, write) in writes.into_iter().enumerate() {
        let outcome = match write {
            Write::Register(n) => {
                let bytes = format!("lane {lane} write {i}");
                registered[n] += 1;
                register(&registry, NAMES[n], bytes.as_bytes(), &[])
                    .await
                    .map(drop)
            }
            Write::SetAlias(n, a, v) => registry
                .set_alias(NAMES[n], ALIASES[a], v, &actor())
                .await
                .map(drop),
            Write::Archive(n, v) => registry.archive(NAMES[n], v, &actor()).await.map(drop),
        };
        match outcome {
            Ok(())
            | Err(
                RegistryError::ModelNotFound(_)
                | RegistryError::VersionNotFound { .. }
                | RegistryError::Conflict(_),
            ) => {}
            Err(other) => panic!("lane {lane} write {i}: {other}"),
        }
    }
    registered
}

fn concurrent_writes_keep_numbering_gap_free_and_aliases_valid(backend: Backend) {
    let lanes = proptest::collection::vec(proptest::collection::vec(write(), 1..12), 2..4);
    let config = proptest::test_runner::Config::with_cases(24);
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let outcome = runner.run(&lanes, |lanes| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let store = Store::new(backend).await;
            let registry = Arc::new(store.open().await);
            let lanes: Vec<_> = lanes
                .into_iter()
                .enumerate()
                .map(|(lane, writes)| tokio::spawn(run_lane(Arc::clone(&registry), lane, writes)))
                .collect();
            let mut registered = [0u32; 2];
            for lane in lanes {
                let counts = lane.await.expect("lane");
                registered[0] += counts[0];
                registered[1] += counts[1];
            }
            for (name, count) in NAMES.iter().zip(registered) {
                let numbers: Vec<u32> = match registry.list_versions(name, true).await {
                    Ok(versions) => versions.iter().map(|v| v.version).collect(),
                    Err(RegistryError::ModelNotFound(_)) => Vec::new(),
                    Err(other) => panic!("{other}"),
                };
                assert_eq!(numbers, (1..=count).collect::<Vec<_>>(), "{name}: gap-free");
            }
            for alias in registry.aliases().await.expect("aliases") {
                let target = registry
                    .version(&alias.name, &VersionRef::Number(alias.version))
                    .await
                    .expect("an alias points at a version");
                assert!(!target.archived, "{alias:?} points at an archived version");
            }
            assert_eq!(store.check().await, Vec::new());
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

async fn the_offline_check_finds_writes_that_bypassed_the_registry(store: Store) {
    let registry = two_versions(&store).await;
    assert_eq!(store.check().await, Vec::new());

    // A version inserted and an alias moved by hand, with no audit entry.
    sqlx::query(
        "INSERT INTO model_versions SELECT name, 3, sha256, size_bytes, created_at, description, tags, \
         feature_names, features, class_labels, positive_class, threshold, risk_band_cuts, \
         reference_dataset, producer, archived FROM model_versions WHERE version = 2",
    )
    .execute(&registry.pool)
    .await
    .expect("insert");
    sqlx::query("UPDATE aliases SET version = 2")
        .execute(&registry.pool)
        .await
        .expect("move");
    sqlx::query("UPDATE model_versions SET archived = 1 WHERE version = 2")
        .execute(&registry.pool)
        .await
        .expect("archive");
    let artifacts = store.artifacts().await;
    artifacts
        .put_behind_registry(ArtifactKind::Model, "stray", b"x")
        .await;
    let findings = store.check().await;
    let problems: Vec<(Severity, &str)> = findings
        .iter()
        .map(|f| (f.severity, f.problem.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                Severity::Damage,
                "alias \"production\" of model \"churn\" points at archived version 2"
            ),
            (
                Severity::Damage,
                "model \"churn\" version 3 has no registration in the audit log"
            ),
            (
                Severity::Damage,
                "alias \"production\" of model \"churn\" points at version 2 but the audit log's last move of it says version 1"
            ),
            (
                Severity::Leftover,
                &*format!(
                    "{} belongs to no version or dataset",
                    artifacts.describe(ArtifactKind::Model, "stray")
                )
            ),
        ]
    );
}

async fn versions_are_numbered_per_model_and_aliases_move_in_the_same_transaction(store: Store) {
    let registry = store.open().await;
    assert!(registry.is_empty().await.expect("empty"));
    let first = register(&registry, "churn", b"model one", &["production"])
        .await
        .expect("v1");
    let second = register(&registry, "churn", b"model two", &[])
        .await
        .expect("v2");
    let other = register(&registry, "other", b"model one", &[])
        .await
        .expect("other v1");
    assert_eq!((first.version, second.version, other.version), (1, 2, 1));
    assert_eq!(first.aliases, ["production"]);
    assert_eq!(first.sha256, sha256_hex(b"model one"));
    assert_eq!(first.metadata.tags["team"], "retention");
    let production = registry
        .version("churn", &VersionRef::Alias("production".to_owned()))
        .await
        .expect("alias");
    assert_eq!(production.version, 1);
    assert_eq!(
        registry.model_bytes(&second).await.expect("bytes"),
        b"model two"
    );
    // The same bytes under two names are stored once.
    assert_eq!(store.artifact_names(ArtifactKind::Model).await.len(), 2);

    let models = registry.list_models().await.expect("models");
    assert_eq!(
        models
            .iter()
            .map(|m| (m.name.as_str(), m.latest_version))
            .collect::<Vec<_>>(),
        [("churn", 2), ("other", 1)]
    );
    assert_eq!(
        models[0].aliases,
        BTreeMap::from([("production".to_owned(), 1)])
    );
    let actions: Vec<String> = registry
        .audit_log()
        .await
        .expect("audit")
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.name))
        .collect();
    assert_eq!(
        actions,
        [
            "register_model churn",
            "set_alias churn",
            "register_model churn",
            "register_model other"
        ]
    );
}

async fn concurrent_registrations_get_distinct_gap_free_versions(store: Store) {
    let registry = Arc::new(store.open().await);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                register(&registry, "churn", format!("model {i}").as_bytes(), &[])
                    .await
                    .expect("register")
                    .version
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.expect("task"));
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
}

async fn a_refused_registration_leaves_nothing_behind(store: Store) {
    let registry = store.open().await;
    let error = register(&registry, "bad name!", b"bytes", &[])
        .await
        .expect_err("invalid name");
    assert!(matches!(error, RegistryError::Invalid(_)), "{error}");
    let error = register(&registry, "churn", b"bytes", &["not an alias"])
        .await
        .expect_err("invalid alias");
    assert!(matches!(error, RegistryError::Invalid(_)), "{error}");
    assert!(registry.is_empty().await.expect("empty"));
    assert!(store.artifact_names(ArtifactKind::Model).await.is_empty());
    assert!(store.unfinished_uploads().await.is_empty());

    let mut staging = registry.stage(ArtifactKind::Model, 4).await.expect("stage");
    assert!(matches!(
        staging.write(b"too long").await,
        Err(RegistryError::TooLarge { limit: 4 })
    ));
    drop(staging);
    assert!(
        store.unfinished_uploads().await.is_empty(),
        "an abandoned upload is removed"
    );
    assert_eq!(
        register(&registry, "churn", b"good", &[])
            .await
            .expect("next")
            .version,
        1,
        "no number consumed"
    );
}

async fn shadows_are_audited_replaced_deleted_and_their_scores_kept(store: Store) {
    let registry = two_versions(&store).await;
    let shadow = |version, record| ShadowConfig {
        name: "churn".to_owned(),
        alias: "production".to_owned(),
        shadow_version: version,
        record,
    };
    assert!(matches!(
        registry.set_shadow(&shadow(9, false), &actor()).await,
        Err(RegistryError::VersionNotFound { version: 9, .. })
    ));
    registry
        .set_shadow(&shadow(2, false), &actor())
        .await
        .expect("set");
    registry
        .set_shadow(&shadow(2, true), &actor())
        .await
        .expect("replace");
    assert_eq!(
        registry.shadows().await.expect("shadows"),
        vec![shadow(2, true)]
    );
    let pair = ShadowScore {
        customer_id: "7590-VHVEG".to_owned(),
        served_version: 1,
        served_score: 0.25,
        shadow_score: 0.5,
    };
    registry
        .record_shadow_scores(&shadow(2, true), std::slice::from_ref(&pair))
        .await
        .expect("record");
    assert_eq!(
        registry
            .shadow_scores("churn", "production")
            .await
            .expect("scores"),
        vec![pair]
    );
    registry
        .delete_shadow("churn", "production", &actor())
        .await
        .expect("delete");
    assert!(registry.shadows().await.expect("shadows").is_empty());
    assert!(matches!(
        registry
            .delete_shadow("churn", "production", &actor())
            .await,
        Err(RegistryError::ShadowNotFound { .. })
    ));
    let actions: Vec<String> = registry
        .audit_log()
        .await
        .expect("audit")
        .into_iter()
        .map(|entry| entry.action)
        .filter(|action| action.contains("shadow"))
        .collect();
    assert_eq!(actions, ["set_shadow", "set_shadow", "delete_shadow"]);
}

async fn alias_and_archive_rules(store: Store) {
    let registry = two_versions(&store).await;
    let error = registry
        .archive("churn", 1, &actor())
        .await
        .expect_err("aliased");
    assert!(
        error
            .to_string()
            .contains("still the target of alias(es) production"),
        "{error}"
    );
    assert!(
        registry
            .archive("churn", 2, &actor())
            .await
            .expect("archive")
            .archived
    );
    let error = registry
        .set_alias("churn", "production", 2, &actor())
        .await
        .expect_err("archived");
    assert!(matches!(error, RegistryError::Conflict(_)), "{error}");
    assert_eq!(
        registry
            .list_versions("churn", false)
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        registry
            .list_versions("churn", true)
            .await
            .expect("list")
            .len(),
        2
    );
    assert!(matches!(
        registry.set_alias("churn", "production", 9, &actor()).await,
        Err(RegistryError::VersionNotFound { version: 9, .. })
    ));
    assert!(matches!(
        registry.set_alias("nope", "production", 1, &actor()).await,
        Err(RegistryError::ModelNotFound(_))
    ));
    registry
        .delete_alias("churn", "production", &actor())
        .await
        .expect("delete");
    assert!(matches!(
        registry.delete_alias("churn", "production", &actor()).await,
        Err(RegistryError::AliasNotFound { .. })
    ));
    assert!(matches!(
        registry
            .version("churn", &VersionRef::Alias("production".to_owned()))
            .await,
        Err(RegistryError::AliasNotFound { .. })
    ));
}

async fn reopening_keeps_everything_and_removes_what_a_crash_left(store: Store) {
    let before = {
        let registry = store.open().await;
        register(&registry, "churn", b"one", &["production"])
            .await
            .expect("v1")
    };
    let artifacts = store.artifacts().await;
    std::fs::write(
        artifacts.staging_dir().join("models-1-2-3.part"),
        b"half an upload",
    )
    .expect("write");
    artifacts
        .put_behind_registry(ArtifactKind::Model, &sha256_hex(b"orphan"), b"orphan")
        .await;
    let registry = store.open().await;
    assert_eq!(
        registry
            .version("churn", &VersionRef::Alias("production".to_owned()))
            .await
            .expect("v1"),
        before
    );
    assert_eq!(
        store.artifact_names(ArtifactKind::Model).await,
        [format!("{}.onnx", before.sha256)]
    );
    assert!(store.unfinished_uploads().await.is_empty());

    artifacts
        .put_behind_registry(ArtifactKind::Model, &before.sha256, b"tampered")
        .await;
    let error = registry.model_bytes(&before).await.expect_err("corrupt");
    assert!(error.to_string().contains("has changed"), "{error}");
}

async fn datasets_are_counted_unique_and_checked(store: Store) {
    let registry = store.open().await;
    let dataset = |name: &str| NewDataset {
        name: name.to_owned(),
        label_column: "churn".to_owned(),
        positive_label: "Yes".to_owned(),
        description: String::new(),
    };
    let csv = b"customerid,tenure,churn\na,1,Yes\nb,2,No\nc,3,Yes\n";
    let upload = staged(&registry, ArtifactKind::Dataset, csv).await;
    let record = registry
        .upload_dataset(dataset("holdout"), upload, &actor())
        .await
        .expect("upload");
    assert_eq!(
        (record.rows, record.positives, record.columns.len()),
        (3, 2, 3)
    );
    assert_eq!(
        std::fs::read(registry.dataset_file(&record).await.expect("file")).expect("stored"),
        csv
    );
    let upload = staged(&registry, ArtifactKind::Dataset, csv).await;
    assert!(matches!(
        registry
            .upload_dataset(dataset("holdout"), upload, &actor())
            .await,
        Err(RegistryError::DatasetExists(_))
    ));

    let cases: [(&[u8], &str); 2] = [
        (
            b"customerid,tenure\na,1\n",
            "label_column \"churn\" is not a column of the header",
        ),
        (b"customerid,tenure,churn\na,1,Yes\nb,2\n", "csv line 3"),
    ];
    for (bytes, fragment) in cases {
        let upload = staged(&registry, ArtifactKind::Dataset, bytes).await;
        let error = registry
            .upload_dataset(dataset("broken"), upload, &actor())
            .await
            .expect_err("invalid csv");
        assert!(error.to_string().contains(fragment), "{error}");
    }
    assert_eq!(registry.list_datasets().await.expect("list").len(), 1);
    assert_eq!(store.artifact_names(ArtifactKind::Dataset).await.len(), 1);
}

async fn the_audit_log_refuses_updates_and_deletes(store: Store) {
    let registry = two_versions(&store).await;
    for statement in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(&registry.pool)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("audit_log is append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(registry.audit_log().await.expect("audit").len(), 3);
}

async fn audit_pages_are_newest_first_and_by_name(store: Store) {
    let registry = two_versions(&store).await;
    register(&registry, "upsell", b"model three", &[])
        .await
        .expect("upsell v1");
    let log = registry.audit_log().await.expect("audit");
    let newest_first: Vec<i64> = log.iter().rev().map(|e| e.id).collect();
    let everything = registry.audit_page(None, None, 100).await.expect("page");
    assert_eq!(
        everything.iter().map(|e| e.id).collect::<Vec<_>>(),
        newest_first
    );
    let churn = registry
        .audit_page(Some("churn"), None, 100)
        .await
        .expect("page");
    assert!(!churn.is_empty() && churn.iter().all(|e| e.name == "churn"));
    assert_eq!(
        churn.len(),
        log.iter().filter(|e| e.name == "churn").count()
    );
    let first = registry.audit_page(None, None, 2).await.expect("page");
    let rest = registry
        .audit_page(None, Some(first[1].id), 100)
        .await
        .expect("page");
    let paged: Vec<i64> = first.iter().chain(&rest).map(|e| e.id).collect();
    assert_eq!(paged, newest_first);
}

async fn evaluations_are_listed_newest_first_with_each_versions_latest_roc_auc(store: Store) {
    let registry = two_versions(&store).await;
    assert!(
        registry
            .latest_roc_auc("churn")
            .await
            .expect("none yet")
            .is_empty()
    );
    let evaluate = |version: u32, roc_auc: f64| NewEvaluation {
        name: "churn".to_owned(),
        version,
        dataset: "holdout".to_owned(),
        dataset_sha256: "ab".repeat(32),
        threshold: 0.5,
        roc_auc,
        metrics_json: format!(r#"{{"roc_auc":{roc_auc}}}"#),
    };
    for (version, roc_auc) in [(1, 0.71), (2, 0.8), (1, 0.7301), (1, 0.7302)] {
        registry
            .record_evaluation(evaluate(version, roc_auc), &actor())
            .await
            .expect("recorded");
    }
    let latest = registry.latest_roc_auc("churn").await.expect("latest");
    assert_eq!(latest, BTreeMap::from([(1, 0.7302), (2, 0.8)]));
    let listed = registry
        .evaluations("churn", Some(1))
        .await
        .expect("listed");
    let stored: Vec<&str> = listed.iter().map(|e| e.metrics_json.as_str()).collect();
    assert_eq!(
        stored,
        [
            r#"{"roc_auc":0.7302}"#,
            r#"{"roc_auc":0.7301}"#,
            r#"{"roc_auc":0.71}"#
        ],
        "newest first, the JSON as given"
    );
    assert!(matches!(
        registry.latest_roc_auc("nobody").await,
        Err(RegistryError::ModelNotFound(_))
    ));
    assert!(matches!(
        registry.record_evaluation(evaluate(3, 0.9), &actor()).await,
        Err(RegistryError::VersionNotFound { .. })
    ));
}

async fn logged_predictions_are_labelled_by_the_first_outcome_in_the_horizon(store: Store) {
    let registry = two_versions(&store).await;
    const DAY: i64 = 86_400_000;
    let logged = |customer: &str, version: u32, probability: f64, at: i64| LoggedPrediction {
        name: "churn".to_owned(),
        version,
        alias: String::new(),
        customer_id: customer.to_owned(),
        probability,
        will_churn: probability >= 0.5,
        scored_at_millis: at,
    };
    registry
        .log_predictions(&[
            logged("b", 1, 0.25, 10 * DAY),
            logged("a", 1, 0.75, 20 * DAY),
            logged("a", 1, 0.5, 10 * DAY),
            logged("c", 1, 0.125, 10 * DAY),
            logged("d", 1, 0.375, 10 * DAY),
            logged("a", 2, 0.875, 10 * DAY),
            logged("e", 1, 0.625, 40 * DAY),
        ])
        .await
        .expect("logged");
    let outcome = |customer: &str, churned: bool, at: i64| OutcomeRecord {
        customer_id: customer.to_owned(),
        churned,
        observed_at_millis: at,
    };
    let outcomes = [
        // a: before its second prediction, so it labels only the first; then a later one.
        outcome("a", true, 15 * DAY),
        outcome("a", false, 25 * DAY),
        // b: observed before the prediction, ignored; then within the horizon.
        outcome("b", true, 9 * DAY),
        outcome("b", false, 12 * DAY),
        // c: past a 30-day horizon.
        outcome("c", true, 41 * DAY),
        // d: a stay and a churn at the same instant: the stay first.
        outcome("d", true, 11 * DAY),
        outcome("d", false, 11 * DAY),
    ];
    let matched = registry
        .record_outcomes(&outcomes, 30 * DAY)
        .await
        .expect("recorded");
    assert_eq!(
        matched, 5,
        "all but c's, which is past the horizon, and b's early one"
    );
    let scan = async || {
        let mut seen = Vec::new();
        registry
            .scan_labelled_predictions(
                &PredictionWindow {
                    name: "churn".to_owned(),
                    source: PredictionSource::Version(1),
                    since_millis: 10 * DAY,
                    until_millis: 40 * DAY,
                    horizon_millis: 30 * DAY,
                },
                |p| seen.push((p.customer_id, p.scored_at_millis / DAY, p.churned)),
            )
            .await
            .expect("scanned");
        seen
    };
    let expected = vec![
        ("a".to_owned(), 10, Some(true)),
        ("a".to_owned(), 20, Some(false)),
        ("b".to_owned(), 10, Some(false)),
        ("c".to_owned(), 10, None),
        ("d".to_owned(), 10, Some(false)),
    ];
    assert_eq!(
        scan().await,
        expected,
        "by customer then time; e is past until"
    );
    assert_eq!(
        registry
            .record_outcomes(&outcomes, 30 * DAY)
            .await
            .expect("recorded again"),
        matched
    );
    assert_eq!(scan().await, expected, "recording twice changes nothing");
    assert_eq!(
        registry
            .delete_predictions_before(15 * DAY)
            .await
            .expect("deleted"),
        5
    );
    assert_eq!(scan().await, vec![("a".to_owned(), 20, Some(false))]);
}

async fn thresholds_and_timestamps_keep_their_precision(store: Store) {
    let registry = two_versions(&store).await;
    let threshold = 0.123_456_789_012_345_67_f64;
    let record = registry
        .set_threshold("churn", 2, threshold, &actor())
        .await
        .expect("threshold");
    assert_eq!(record.metadata.threshold.to_bits(), threshold.to_bits());
    let before = now_millis();
    let third = register(&registry, "churn", b"model three", &[])
        .await
        .expect("v3");
    assert!(
        third.created_at_millis >= before && third.created_at_millis > i64::from(i32::MAX),
        "{} is the registration time in milliseconds",
        third.created_at_millis
    );
    assert_eq!(third.size_bytes, b"model three".len() as u64);
}

async fn seeding_is_claimed_once_and_never_on_a_used_registry(store: Store) {
    let registry = Arc::new(store.open().await);
    let claims: Vec<_> = (0..3)
        .map(|_| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move { registry.claim_seeding(&actor()).await })
        })
        .collect();
    let mut granted = 0;
    for claim in claims {
        granted += usize::from(claim.await.expect("task").expect("claim"));
    }
    assert_eq!(granted, 1, "one of three simultaneous claims is granted");

    let used = Store::new(store.location.database.backend()).await;
    let registry = used.open().await;
    register(&registry, "churn", b"model", &[])
        .await
        .expect("v1");
    assert!(!registry.claim_seeding(&actor()).await.expect("claim"));
}

#[tokio::test]
async fn a_sqlite_url_elsewhere_is_used_and_its_directory_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("elsewhere/registry.db");
    let url = format!("sqlite://{}", file.display());
    let location = Location::new(&dir.path().join("node"), Some(&url), None).expect("location");
    let registry = Registry::connect(&location).await.expect("open");
    register(&registry, "churn", b"model", &[])
        .await
        .expect("v1");
    assert!(file.is_file(), "the registry is in the URL's file");
    assert!(!dir.path().join("node/registry.db").exists());
}
