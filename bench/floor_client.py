"""The floor: a bare aiohttp loop that posts chat-completions requests and parses the answers.

Nothing else: no files, no chunking, no retries, no cache, no output. dscall's client CPU per
request is compared against this. Run as a script so its CPU can be measured apart:

    python -m bench.floor_client BASE_URL N CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from bench.corpus import document_text


async def run(base_url: str, total: int, concurrency: int) -> int:
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    next_index = 0
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, ok
        while next_index < total:
            index = next_index
            next_index += 1
            body = json.dumps(
                {
                    "model": "deepseek-flash",
                    "messages": [
                        {"role": "system", "content": "Summarise."},
                        {"role": "user", "content": document_text(index)},
                    ],
                }
            )
            async with session.post(url, data=body, headers=headers) as resp:
                payload = json.loads(await resp.read())
            if payload["choices"][0]["message"]["content"]:
                ok += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ok


def main() -> None:
    base_url, total, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ok = asyncio.run(run(base_url, total, concurrency))
    print(json.dumps({"ok": ok}))


if __name__ == "__main__":
    main()
