"""The aiosmtpd peer of scripts/bench-peers.sh: aiosmtpd's documented handler shape, keeping every
message (envelope and bytes) in a list in memory.

usage: python aiosmtpd_sink.py HOST PORT COUNT_PORT

Connecting to COUNT_PORT (on HOST) returns the number of messages stored so far as one line, which is how
the script checks messages received against messages sent. Runs until SIGTERM or SIGINT.
"""

import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP


class ListHandler:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


async def main(host, port, count_port):
    handler = ListHandler()
    loop = asyncio.get_running_loop()
    # aiosmtpd's Controller runs this same factory in a thread; here it runs on the main loop directly.
    smtp = await loop.create_server(
        lambda: SMTP(handler, hostname="aiosmtpd-sink.test"),
        host,
        port,
    )

    async def report_count(reader, writer):
        writer.write(f"{len(handler.messages)}\n".encode())
        await writer.drain()
        writer.close()

    counter = await asyncio.start_server(report_count, host, count_port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    smtp.close()
    counter.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: aiosmtpd_sink.py HOST PORT COUNT_PORT")
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
