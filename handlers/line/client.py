"""The LINE SDK's API client, with the proxy read from the environment once, not per request."""

import urllib.request
from urllib.parse import urlsplit

import aiohttp
from linebot.v3.messaging import AsyncApiClient, Configuration


def env_proxy(url: str) -> str | None:
    """Return the proxy the environment (HTTPS_PROXY, NO_PROXY…) names for a URL, if any."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def api_client(host: str, access_token: str) -> AsyncApiClient:
    """Return an SDK client for a host that reads the environment's proxy once, at start.

    The SDK's aiohttp session trusts the environment, which makes aiohttp look up proxies and
    ~/.netrc in a thread on every request: about 1.4 ms of CPU per reply under the scale-out
    bench (bench/scale_bench.py, docs/benchmarks.md). The proxy goes in the SDK's own setting.
    """
    configuration = Configuration(host=host, access_token=access_token)
    configuration.proxy = env_proxy(host)
    client = AsyncApiClient(configuration)
    rest = client.rest_client
    trusting = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(connector=trusting.connector, trust_env=False)
    trusting.detach()  # its connector (the SDK's pool and TLS settings) now serves the new one
    return client
