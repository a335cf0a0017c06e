"""crypto's one masking rule, by shapes: the keys of real providers (their prefixes, alphabets and
lengths, made up here from a seeded generator: many of each) masked wherever they stand in a text;
the model ids and identifiers real providers name in their errors left readable."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

import pytest

from codelace_box.crypto import mask_in, mask_tokens

B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"
HEX = "0123456789abcdef"
SAMPLES = 300  # of each shape: a rule that lets some random ones through is seen


def made(
    prefix: str, alphabet: str, length: int, suffix: str = ""
) -> Callable[[random.Random], str]:
    return lambda rng: prefix + "".join(rng.choice(alphabet) for _ in range(length)) + suffix


# (who, how such a key is made): each provider's documented or observed key shape
KEY_SHAPES = [
    ("OpenAI (legacy)", made("sk-", B62, 48)),
    ("OpenAI project", made("sk-proj-", B64URL, 156)),
    ("OpenAI service account", made("sk-svcacct-", B64URL, 156)),
    ("OpenAI admin", made("sk-admin-", B64URL, 120)),
    ("Anthropic", made("sk-ant-api03-", B64URL, 93, "AA")),
    ("Anthropic admin", made("sk-ant-admin01-", B64URL, 93, "AA")),
    ("Google AI Studio", made("AIzaSy", B64URL, 33)),
    ("Groq", made("gsk_", B62, 52)),
    ("Together (hex)", made("", HEX, 64)),
    ("Together (v1)", made("tgp_v1_", B64URL, 43)),
    ("OpenRouter", made("sk-or-v1-", HEX, 64)),
    ("DeepSeek", made("sk-", HEX, 32)),
    ("Mistral", made("", B62, 32)),
    ("xAI", made("xai-", B62, 80)),
    ("Perplexity", made("pplx-", B62, 48)),
    ("Fireworks", made("fw_", B62, 24)),
    ("Stripe secret", made("sk_live_", B62, 99)),
    ("Stripe test", made("sk_test_", B62, 99)),
    ("Stripe restricted", made("rk_live_", B62, 99)),
    ("Stripe webhook secret", made("whsec_", B62, 32)),
    ("our box key", made("cl_", B62, 40)),
    ("a random base64url token", made("", B64URL, 43)),
    ("a random mixed-case token without digits", made("", string.ascii_letters, 32)),
]
AROUND = ("Incorrect API key provided: {}.", "key={}", '"{}"', "({} expired)", "{}")


@pytest.mark.parametrize(("who", "make"), KEY_SHAPES, ids=[who for who, _ in KEY_SHAPES])
def test_every_key_of_a_real_shape_is_masked(
    who: str, make: Callable[[random.Random], str]
) -> None:
    rng = random.Random(who)
    for n in range(SAMPLES):
        key = make(rng)
        text = AROUND[n % len(AROUND)].format(key)
        for masked in (mask_tokens(text, 1000), mask_in(text, "sk-the-key-in-use-0000")):
            assert key[-12:-4] not in masked, (who, key, masked)


@pytest.mark.parametrize(
    "text",
    [
        "Invalid bearer token: Bearer operatorsecretkeywithoutanydigitsatall",
        "Authorization: Bearer c0ffee-tok-2a7b9",
        "authorization: bearer c0ffee-tok-2a7b9",  # HTTP's scheme names are any case
        "AUTHORIZATION: BEARER c0ffee-tok-2a7b9",
    ],
)
def test_a_bearer_token_is_masked_whatever_its_shape(text: str) -> None:
    token = text.rsplit(" ", 1)[1]
    masked = mask_tokens(text)
    assert token not in masked and token[3:-4] not in masked, masked
    assert text.rsplit(" ", 1)[0] + " " in masked, masked


# Model ids as providers name them (OpenAI, Anthropic, Google, Groq, Together, OpenRouter,
# Fireworks, Bedrock, Azure deployments, Hugging Face repositories) and identifiers in errors.
NAMES = [
    "Meta-Llama-3.1-405B-Instruct-Turbo",
    "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "claude-opus-4-6-20260115",
    "claude-sonnet-4-5-20250929-thinking-32k",
    "gpt-5.4-mini-2026-08-01",
    "gpt-4o-realtime-preview-2024-12-17",
    "ft:gpt-4o-mini-2024-07-18:my-org:custom-suffix:9abcDEF1",
    "gemini-2.5-flash-preview-05-20",
    "gemini-2.0-flash-thinking-exp-01-21",
    "llama3-groq-70b-8192-tool-use-preview",
    "meta-llama/llama-4-scout-17b-16e-instruct",
    "mistralai/Mixtral-8x22B-Instruct-v0.1",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
    "DeepSeek-R1-0528-Qwen3-8B",
    "Qwen/Qwen3-235B-A22B-Thinking-2507",
    "Qwen3-Coder-480B-A35B-Instruct-FP8",
    "togethercomputer/RedPajama-INCITE-7B-Instruct",
    "NousResearch/Nous-Hermes-2-Mixtral-8x7B-SFT",
    "Llama-4-Maverick-17B-128E-Instruct-FP8",
    "moonshotai/Kimi-K2-Instruct-0905",
    "x-ai/grok-4-fast:free",
    "accounts/fireworks/models/llama-v3p1-405b-instruct",
    "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
    "my-gpt4o-deployment-eastus2",
    "AcmeSupportAssistantV2",
    "SmolLM2-1.7B-Instruct",
    "WizardLM-2-8x22B",
    "TheBloke/Mistral-7B-Instruct-v0.2-GGUF",
    "context_length_exceeded",
    "maxCompletionTokensExceededForModel",
    "req_011CSHoEeqs5C35K2UUqR7Fy",
    "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "Bearer authentication",
    # Fireworks' versions (`2p5`), Azure's error codes, OpenAI's object ids a user quotes
    "accounts/fireworks/models/qwen2p5-coder-32b-instruct",
    "accounts/fireworks/models/llama-v3p2-90b-vision-instruct",
    "InvalidAuthenticationToken",
    "AuthenticationTypeDisabled",
    "file-abc123DEF456ghi789JKL0",
    "ftjob-abc123DEF456ghi789JKL0",
    "ft-AF1WoRqd3aJAHsqc9NY7iL8F",
    "thread_abc123DEF456ghi789JKL",
    "batch_68af1234567890abcdef12",
    "cmpl-uqkvlQyYK7bGYrRHQ0eLZSSu",
    # the Responses API's items Codex sends back ("Item with id 'rs_...' not found"), Anthropic's
    # server tool calls
    "rs_6876cf02f4a481a2a3b9a43e9e5e8d3b0d39ba6c8a0e1e4a",
    "fc_68af1234567890abcdef1234567890ab",
    "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
]


@pytest.mark.parametrize("name", NAMES)
def test_model_ids_and_identifiers_stay_readable(name: str) -> None:
    """CamelCase parts (`DeepSeek`, `RedPajama`), short mixes longer than four (`8x22B`,
    `Qwen3`) and words with a digit (`llama3`, `eastus2`) were read as random: the id was
    masked (`deepseek-ai/Dee…-70B`) in errors a user, the log and the dashboard see."""
    for text in (f"The model `{name}` does not exist", f"model: {name}", name):
        assert mask_tokens(text) == text, mask_tokens(text)


@pytest.mark.parametrize(
    "text",
    [
        "contact us through our help center at help.openai.com if the error persists. (Please "
        "include the request ID 3c8b0d0c5a1fb8c7e9d1e1a1f2b3c4d5 in your message.)",
        "contact us through an Azure support request if you keep seeing this error. (Please "
        "include the request ID 2f9b54f7-8d1e-4a3c-9f2b-1c2d3e4f5a6b in your email.)",
        "Error code: 400 - invalid_value (request_id: b32125fb-5acc-48f9-a8ea-8e2145c81893)",
        "upstream failed; trace-id=4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_the_request_id_a_provider_asks_for_stays_readable(text: str) -> None:
    """OpenAI's and Azure's 500s ask the user to quote a request id, hex or a UUID: masked by
    the hex rule ('2f9…5a6b'), nobody could quote it. A key there is still masked, and
    anything there but hex."""
    assert mask_tokens(text) == text, mask_tokens(text)
    key = "sk-ant-api03-" + "Ab1" * 30
    assert key[20:40] not in mask_tokens(f"request ID {key}")
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"  # ids are hex or UUIDs; this is no id
    assert secret[4:-4] not in mask_tokens(f"Request Id={secret}")
