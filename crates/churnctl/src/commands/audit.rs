//! `audit`: the registry's audit log, newest first, a page at a time.

use churn_api::v1 as pb;
use serde_json::{Value, json};

use crate::output::{Format, Table, utc_of};
use crate::session::{Session, status};

pub(crate) async fn audit(
    session: &Session,
    name: String,
    limit: u32,
    before: Option<u64>,
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::ListAuditEventsRequest {
        name,
        limit,
        before_id: before.unwrap_or(0),
    };
    let page = session
        .registry()
        .list_audit_events(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let mut table = Table::new(&["AT", "ACTOR", "ACTION", "NAME", "DETAIL", "ID"]);
    for event in page.events {
        let detail: Value =
            serde_json::from_str(&event.detail_json).unwrap_or(json!(event.detail_json));
        table.row(vec![
            json!(utc_of(event.at.as_ref())),
            json!(event.actor),
            json!(event.action),
            json!(event.name),
            detail,
            json!(event.id),
        ]);
    }
    table.print(format);
    if page.next_before_id > 0 && format == Format::Table {
        eprintln!("older events: --before {}", page.next_before_id);
    }

    Ok(())
}
