"""An aiosmtpd handler that keeps each message it receives, decoded, as one
JSON line: its envelope, its headers and its plain-text body. The tests read
the messages back from that file (see tests/src/smtp_local.rs)."""

import base64
import json
from email import message_from_bytes, policy


class JsonLines:
    def __init__(self, path):
        self.path = path

    @classmethod
    def from_cli(cls, parser, *args):
        # `python3 -m aiosmtpd -c recorder.JsonLines PATH`
        if len(args) != 1:
            parser.error("JsonLines takes the path of its file")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "body": body.get_content() if body is not None else "",
            "attachments": [
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "base64": base64.b64encode(part.get_payload(decode=True)).decode(),
                }
                for part in message.iter_attachments()
            ],
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return "250 Message accepted for delivery"
