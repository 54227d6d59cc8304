//! E-mail through SMTP (`DECOMPTE_SMTP_*`): on AWS, Amazon SES's SMTP
//! interface, elsewhere any server; in the tests, a real SMTP server on
//! loopback. Plain text, French, one message per mairie.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MessageBuilder, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use decompte_config::{ConfigError, Options};

/// Sends the app's e-mails, a connection each (no pool: building one
/// needs no runtime, and a few hundred e-mails a day need no more).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// Why an e-mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("address `{0}` is not an e-mail address")]
    Address(String),
    #[error("content type `{0}`")]
    ContentType(&'static str),
    #[error("message: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl Mailer {
    /// The mailer the options describe; `None` without `DECOMPTE_SMTP_HOST`.
    pub fn from_options(options: &Options) -> Result<Option<Self>, ConfigError> {
        let Some(host) = options.smtp_host.as_deref() else {
            return Ok(None);
        };
        let invalid = |why: String| ConfigError::Smtp(why);
        let from: Mailbox = options
            .smtp_from
            .as_deref()
            .ok_or_else(|| {
                invalid("DECOMPTE_SMTP_FROM is required with DECOMPTE_SMTP_HOST".into())
            })?
            .parse()
            .map_err(|e| invalid(format!("DECOMPTE_SMTP_FROM: {e}")))?;
        if options.public_origin().is_none() {
            return Err(invalid(
                "DECOMPTE_PUBLIC_URL is needed with DECOMPTE_SMTP_HOST: the e-mails link to the \
                 form"
                    .into(),
            ));
        }
        let builder = match options.smtp_security.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| invalid(e.to_string()))?,
            "none" if is_loopback(host) => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            }
            "none" => {
                return Err(invalid(format!(
                    "DECOMPTE_SMTP_SECURITY=none is for a server on loopback, not {host}: use \
                     starttls or tls"
                )))
            }
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| invalid(e.to_string()))?,
        };
        let mut builder = builder
            .port(options.smtp_port)
            .timeout(Some(Duration::from_secs(15)));
        if let (Some(user), Some(password)) = (&options.smtp_user, &options.smtp_password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Some(Self {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends `body` (plain text) to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let message = self
            .builder(&[to.to_owned()], subject)?
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }

    /// Sends `body` (plain text) to everyone of `to`, with a PDF attached.
    pub async fn send_with_pdf(
        &self,
        to: &[String],
        subject: &str,
        body: String,
        file_name: &str,
        pdf: Vec<u8>,
    ) -> Result<(), MailError> {
        let pdf_type = ContentType::parse("application/pdf")
            .map_err(|_| MailError::ContentType("application/pdf"))?;
        let message = self.builder(to, subject)?.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(Attachment::new(file_name.to_owned()).body(pdf, pdf_type)),
        )?;
        self.transport.send(message).await?;
        Ok(())
    }

    fn builder(&self, to: &[String], subject: &str) -> Result<MessageBuilder, MailError> {
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|_| MailError::Address(address.clone()))?;
            builder = builder.to(mailbox);
        }
        Ok(builder)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(host: &str, security: &str) -> Options {
        let mut options = Options::for_data_dir(std::env::temp_dir());
        options.smtp_host = Some(host.into());
        options.smtp_security = security.into();
        options.smtp_from = Some("Préfecture du Morbihan <crise@morbihan.gouv.fr>".into());
        options.public_url = Some("https://declarer.morbihan.gouv.fr".into());
        options
    }

    #[test]
    fn a_password_goes_in_clear_to_loopback_only() {
        assert!(Mailer::from_options(&options("127.0.0.1", "none")).is_ok_and(|m| m.is_some()));
        let refused = Mailer::from_options(&options("smtp.example.fr", "none"));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("use starttls or tls")),
            "{refused:?}"
        );
        assert!(Mailer::from_options(&options("smtp.example.fr", "starttls")).is_ok());
    }

    #[test]
    fn a_mailer_needs_a_sender_and_the_forms_address() {
        let mut no_sender = options("127.0.0.1", "none");
        no_sender.smtp_from = None;
        assert!(Mailer::from_options(&no_sender).is_err());
        let mut no_address = options("127.0.0.1", "none");
        no_address.public_url = None;
        assert!(Mailer::from_options(&no_address).is_err());
        let mut none = options("127.0.0.1", "none");
        none.smtp_host = None;
        assert!(Mailer::from_options(&none).is_ok_and(|m| m.is_none()));
    }
}
