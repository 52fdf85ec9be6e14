"""The common alternative: the official openai SDK's AsyncOpenAI with an asyncio.Semaphore.

python -m bench.sdk_client BASE_URL N CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import sys

from openai import AsyncOpenAI, DefaultAsyncHttpxClient

try:  # openai 3.x is built on httpx2; 1.x and 2.x on httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx  # type: ignore[no-redef, import-not-found, unused-ignore]

from bench.corpus import document_text


async def run(base_url: str, total: int, concurrency: int) -> int:
    client = AsyncOpenAI(
        base_url=base_url,
        api_key="sk-bench",
        max_retries=2,
        # The SDK's own default client (its timeouts and transport), with a pool as large as
        # the semaphore so that every coroutine let through gets a connection.
        http_client=DefaultAsyncHttpxClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        ),
    )
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> bool:
        async with semaphore:
            completion = await client.chat.completions.create(
                model="deepseek-flash",
                messages=[
                    {"role": "system", "content": "Summarise."},
                    {"role": "user", "content": document_text(index)},
                ],
            )
        return bool(completion.choices[0].message.content)

    results = await asyncio.gather(*(one(i) for i in range(total)))
    await client.close()
    return sum(results)


def main() -> None:
    base_url, total, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ok = asyncio.run(run(base_url, total, concurrency))
    print(json.dumps({"ok": ok}))


if __name__ == "__main__":
    main()
