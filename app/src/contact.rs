//! How the crisis cell reaches a mairie: the parsed forms of its contacts.
//! A `tel:` or `mailto:` link, an e-mail's recipient, an uploaded contact
//! are made of these, never of the text as it was typed.

use std::collections::BTreeMap;

use decompte_config::MairieContact;
use decompte_core::spreadsheet;

/// The most refusals an upload lists before « … ».
pub const SHOWN_PROBLEMS: usize = 10;

/// A mairie's e-mail address as the mail library reads it: one bare
/// address (no name, no second address, no `?` part), with a dot in its
/// domain; `None` otherwise. The only way an address reaches a `mailto:`
/// link or an e-mail.
pub fn mailbox(text: &str) -> Option<lettre::Address> {
    let address: lettre::Address = text.parse().ok()?;
    // Within what RFC 5322 allows, nothing that a `mailto:` link reads as
    // the start of its query (`?`, `&`, `#`, `%`) nor a quoted local part.
    let user = address
        .user()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".!$'*+-/=^_`{|}~".contains(c));
    let domain = address
        .domain()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (user && domain && address.domain().contains('.') && AsRef::<str>::as_ref(&address) == text)
        .then_some(address)
}

/// A telephone number for a `tel:` link: its digits, after an optional
/// `+`; `None` unless it is at least six digits separated only by spaces,
/// dots, dashes or brackets.
pub fn dial(telephone: &str) -> Option<String> {
    let rest = telephone.trim();
    let (plus, rest) = match rest.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", rest),
    };
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let shaped = rest
        .chars()
        .all(|c| c.is_ascii_digit() || " .-()".contains(c));
    (shaped && digits.len() >= 6 && digits.len() <= 20).then(|| format!("{plus}{digits}"))
}

/// The rows of an uploaded file that differ from the directory: a
/// header with `code_commune`, `telephone` and `email` (others ignored,
/// so the downloaded file goes back as it is); one row per commune of the
/// département. Every problem, with its line, in French.
pub fn read_upload(
    text: &str,
    communes: &[decompte_core::Commune],
    directory: &BTreeMap<String, MairieContact>,
) -> Result<BTreeMap<String, (String, String)>, Vec<String>> {
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(|h| h.trim().to_lowercase()).collect(),
        Err(_) => return Err(vec!["Le fichier n'est pas un CSV lisible.".into()]),
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(code_at), Some(telephone_at), Some(email_at)) =
        (column("code_commune"), column("telephone"), column("email"))
    else {
        return Err(vec![
            "La première ligne doit nommer les colonnes code_commune, telephone et email \
             (celles du fichier téléchargé sur cette page)."
                .into(),
        ]);
    };
    let known: BTreeMap<&str, &decompte_core::Commune> =
        communes.iter().map(|c| (c.code.as_str(), c)).collect();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut changed = BTreeMap::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let Ok(record) = record else {
            problems.push(format!("Ligne {line} : illisible."));
            continue;
        };
        let cell = |at: usize| record.get(at).unwrap_or_default().trim().to_owned();
        let code = cell(code_at);
        if code.is_empty() && record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let Some(commune) = known.get(code.as_str()) else {
            problems.push(format!(
                "Ligne {line} : « {code} » n'est pas le code INSEE d'une commune du département."
            ));
            continue;
        };
        if !seen.insert(code.clone()) {
            problems.push(format!(
                "Ligne {line} : {} ({code}) figure déjà plus haut.",
                commune.name
            ));
            continue;
        }
        // The downloaded file protects its cells from spreadsheets with a
        // leading apostrophe; it goes back as it is.
        let (telephone, email) = (
            spreadsheet::read_cell(&cell(telephone_at)).to_owned(),
            spreadsheet::read_cell(&cell(email_at)).to_owned(),
        );
        if !telephone.is_empty() && dial(&telephone).is_none() {
            problems.push(format!(
                "Ligne {line} : « {telephone} » n'est pas un numéro de téléphone ({}) : \
                 écrivez des chiffres, avec des espaces, des points ou un « + » au début \
                 si vous le souhaitez.",
                commune.name
            ));
            continue;
        }
        if !email.is_empty() && mailbox(&email).is_none() {
            problems.push(format!(
                "Ligne {line} : « {email} » n'est pas une adresse électronique ({}) : \
                 écrivez une seule adresse, sous la forme mairie@exemple.fr.",
                commune.name
            ));
            continue;
        }
        let listed = directory.get(&code).cloned().unwrap_or_default();
        if listed.telephone != telephone || listed.email != email {
            changed.insert(code, (telephone, email));
        }
    }
    if problems.is_empty() {
        Ok(changed)
    } else {
        if problems.len() > SHOWN_PROBLEMS {
            let more = problems.len() - SHOWN_PROBLEMS;
            problems.truncate(SHOWN_PROBLEMS);
            problems.push(format!("… et {more} autre(s)."));
        }
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::{dial, mailbox};

    #[test]
    fn only_plain_addresses_are_addresses() {
        for good in [
            "mairie@allaire.bzh",
            "secretariat.mairie@arradon.fr",
            "=x@a.fr",
        ] {
            assert!(mailbox(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "mairie.allaire.bzh",
            "m@a.fr?bcc=x@evil.example",
            "m?bcc=x@evil.example",
            "=HYPERLINK(1)@a.fr",
            "Maire <m@a.fr>",
            "m@a.fr, x@evil.example",
            "\"a b\"@a.fr",
            "m@localhost",
            " m@a.fr",
            "m%40x@a.fr",
        ] {
            assert!(mailbox(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_numbers_are_dialled() {
        assert_eq!(dial("02 97 01 60 00").as_deref(), Some("0297016000"));
        assert_eq!(
            dial("+33 (0)2.97.01.60.00").as_deref(),
            Some("+330297016000")
        );
        for bad in [
            "",
            "12345",
            "=1+2",
            "02 97 01 60 00;ext=1",
            "0297+016000",
            "tel:0297016000",
        ] {
            assert_eq!(dial(bad), None, "{bad}");
        }
    }
}
