#!/usr/bin/env python3
"""TLS in front of a plaintext Kafka port, for the secured-Kafka tests (scripts/tansu-secure.sh).

Tansu 0.6.0 accepts `--cert`/`--key` but serves plain TCP: clap refuses the two flags together,
and the broker never wraps its connections in the TLS acceptor it builds (`let _acceptor` in
tansu-broker's `broker.rs`). This terminates TLS with Python's OpenSSL and forwards the bytes
unchanged to the broker, so librdkafka's real TLS client (CA check, host name check, client
certificate) faces a real handshake while Tansu speaks Kafka and SASL behind it.

  tls-front.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT --cert C --key K [--client-ca CA]

With `--client-ca`, a client certificate signed by that CA is required (mutual TLS).
"""

import argparse
import asyncio
import ssl


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer, upstream):
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=address, required=True)
    p.add_argument("--upstream", type=address, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca")
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    loop = asyncio.get_running_loop()
    # Refused handshakes (untrusted CA, no client certificate) are what some tests are about:
    # nothing to report here, the client reports them.
    loop.set_exception_handler(lambda _loop, _context: None)
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args.upstream), *args.listen, ssl=ctx
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
