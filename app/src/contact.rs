//! How the crisis cell reaches a mairie: the parsed forms of its contacts.
//! A `tel:` or `mailto:` link, an e-mail's recipient, an uploaded contact
//! are made of these, never of the text as it was typed.

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
