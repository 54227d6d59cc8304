//! Items of the table and their conversion to and from the domain's types
//! (see the layout in this module's parent and in ARCHITECTURE.md).

use super::*;

pub(super) fn commune_pk(commune: &CommuneCode) -> String {
    format!("COMMUNE#{commune}")
}

pub(super) fn history_sk(date: NaiveDate, version: u32) -> String {
    format!("HISTORY#{date}#{version:06}")
}

/// The attributes a report item carries, current or historical.
pub(super) fn report_attributes(report: &Report) -> Item {
    let counts = report
        .counts
        .iter()
        .map(|(k, v)| (k.clone(), n(v)))
        .collect();
    let mut item = Item::from([
        ("commune".into(), s(report.commune.as_str())),
        ("date".into(), s(report.date.to_string())),
        ("version".into(), n(report.version)),
        ("counts".into(), AttributeValue::M(counts)),
        ("recorded_at".into(), s(ts(report.recorded_at))),
        ("recorded_by".into(), s(&report.recorded_by)),
        ("source".into(), s(report.source.as_str())),
    ]);
    if let Some(reason) = &report.reason {
        item.insert("reason".into(), s(reason));
    }
    if !report.warnings.is_empty() {
        item.insert("warnings".into(), s(report.warnings.join(",")));
    }
    item
}

pub(super) fn current_item(report: &Report) -> Item {
    let mut item = report_attributes(report);
    item.insert("PK".into(), s(commune_pk(&report.commune)));
    item.insert("SK".into(), s(format!("REPORT#{}", report.date)));
    item.insert(
        "G1PK".into(),
        s(format!("CURRENT#{}", report.commune.departement())),
    );
    item.insert(
        "G1SK".into(),
        s(format!(
            "{}#{}#{}",
            ts(report.recorded_at),
            report.commune,
            report.date
        )),
    );
    item.insert("G2PK".into(), s(format!("DAY#{}", report.date)));
    item.insert("G2SK".into(), s(report.commune.as_str()));
    item
}

pub(super) fn history_item(report: &Report) -> Item {
    let mut item = report_attributes(report);
    item.insert("PK".into(), s(commune_pk(&report.commune)));
    item.insert("SK".into(), s(history_sk(report.date, report.version)));
    item
}

pub(super) fn to_report(item: &Item) -> Result<Report> {
    let counts: Counts = item
        .get("counts")
        .and_then(|v| v.as_m().ok())
        .ok_or_else(|| corrupt("counts"))?
        .iter()
        .map(|(k, v)| {
            v.as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .map(|n| (k.clone(), n))
                .ok_or_else(|| corrupt("counts"))
        })
        .collect::<Result<_>>()?;
    Ok(Report {
        commune: CommuneCode::parse(get_s(item, "commune")?).map_err(|_| corrupt("commune"))?,
        date: NaiveDate::parse_from_str(get_s(item, "date")?, "%Y-%m-%d")
            .map_err(|_| corrupt("date"))?,
        counts,
        version: get_n(item, "version")?,
        recorded_at: get_ts(item, "recorded_at")?,
        recorded_by: get_s(item, "recorded_by")?.to_owned(),
        source: get_s(item, "source")?
            .parse()
            .map_err(|_| corrupt("source"))?,
        reason: get_opt_s(item, "reason"),
        warnings: get_opt_s(item, "warnings")
            .map(|w| w.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

pub(super) fn credential_item(credential: &Credential) -> Item {
    let mut item = Item::from([
        ("PK".into(), s("CREDENTIAL")),
        ("SK".into(), s(&credential.id)),
        ("id".into(), s(&credential.id)),
        ("role".into(), s(credential.role.as_str())),
        ("label".into(), s(&credential.label)),
        ("code_hash".into(), s(&credential.code_hash)),
        ("created_at".into(), s(ts(credential.created_at))),
    ]);
    if let Some(commune) = &credential.commune {
        item.insert("commune".into(), s(commune.as_str()));
    }
    if !credential.departements.is_empty() {
        item.insert("departements".into(), s(credential.departements_text()));
    }
    if let Some(at) = credential.last_used_at {
        item.insert("last_used_at".into(), s(ts(at)));
    }
    if let Some(at) = credential.revoked_at {
        item.insert("revoked_at".into(), s(ts(at)));
    }
    if let Some(by) = &credential.issued_by {
        item.insert("issued_by".into(), s(by));
    }
    if let Some(at) = credential.expires_at {
        item.insert("expires_at".into(), s(ts(at)));
    }
    if let Some(factor) = &credential.second_factor {
        item.insert("totp_secret".into(), s(&factor.secret));
        item.insert("totp_last_step".into(), n(factor.last_step));
        if let Some(at) = factor.confirmed_at {
            item.insert("totp_confirmed_at".into(), s(ts(at)));
        }
        if !factor.recovery_hashes.is_empty() {
            item.insert(
                "recovery".into(),
                AttributeValue::Ss(factor.recovery_hashes.clone()),
            );
        }
    }
    item
}

pub(super) fn to_credential(item: &Item) -> Result<Credential> {
    Ok(Credential {
        id: get_s(item, "id")?.to_owned(),
        role: get_s(item, "role")?
            .parse::<Role>()
            .map_err(|_| corrupt("role"))?,
        commune: get_opt_s(item, "commune")
            .map(|c| CommuneCode::parse(&c))
            .transpose()
            .map_err(|_| corrupt("commune"))?,
        departements: get_opt_s(item, "departements")
            .map(|d| Credential::parse_departements(&d))
            .unwrap_or_default(),
        label: get_s(item, "label")?.to_owned(),
        code_hash: get_s(item, "code_hash")?.to_owned(),
        created_at: get_ts(item, "created_at")?,
        last_used_at: get_opt_ts(item, "last_used_at")?,
        revoked_at: get_opt_ts(item, "revoked_at")?,
        issued_by: get_opt_s(item, "issued_by"),
        expires_at: get_opt_ts(item, "expires_at")?,
        second_factor: match get_opt_s(item, "totp_secret") {
            Some(secret) => Some(SecondFactor {
                secret,
                confirmed_at: get_opt_ts(item, "totp_confirmed_at")?,
                last_step: match item.get("totp_last_step") {
                    Some(_) => get_n(item, "totp_last_step")?,
                    None => 0,
                },
                recovery_hashes: {
                    let mut hashes = item
                        .get("recovery")
                        .and_then(|v| v.as_ss().ok())
                        .cloned()
                        .unwrap_or_default();
                    hashes.sort();
                    hashes
                },
            }),
            None => None,
        },
    })
}

pub(super) fn publication_attributes(p: &Publication) -> Item {
    let mut item = Item::from([
        ("id".into(), s(&p.id)),
        ("status".into(), s(p.status.as_str())),
        ("requested_by".into(), s(&p.requested_by)),
        ("reason".into(), s(&p.reason)),
        ("requested_at".into(), s(ts(p.requested_at))),
    ]);
    if let Some(at) = p.started_at {
        item.insert("started_at".into(), s(ts(at)));
    }
    if let Some(at) = p.finished_at {
        item.insert("finished_at".into(), s(ts(at)));
    }
    if let Some(files) = p.files_changed {
        item.insert("files_changed".into(), n(files));
    }
    if let Some(error) = &p.error {
        item.insert("error".into(), s(error));
    }
    item
}

pub(super) fn to_publication(item: &Item) -> Result<Publication> {
    Ok(Publication {
        id: get_s(item, "id")?.to_owned(),
        status: PublicationStatus::parse(get_s(item, "status")?)
            .ok_or_else(|| corrupt("status"))?,
        requested_by: get_s(item, "requested_by")?.to_owned(),
        reason: get_s(item, "reason")?.to_owned(),
        requested_at: get_ts(item, "requested_at")?,
        started_at: get_opt_ts(item, "started_at")?,
        finished_at: get_opt_ts(item, "finished_at")?,
        files_changed: item
            .get("files_changed")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok()),
        error: get_opt_s(item, "error"),
    })
}
