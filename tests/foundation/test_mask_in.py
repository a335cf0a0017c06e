"""crypto.mask_in: the operator's key masked in an upstream's words whatever else is masked
around it (account ids at the provider), and at the end of a cut text; mask_tokens: names left
readable, tokens only shaped like them masked."""

from __future__ import annotations

import pytest

from codelace_box.crypto import mask_in, mask_secret, mask_tokens

KEY = "sk-live-org-Q7rT2xW9pL4mZ8vB3nK6aB1c"  # a key holding what reads as an organization id
# OpenAI's ids: `org-` or `proj_` and 24 base62 characters (as in its 429s: "Rate limit reached
# for gpt-4o in organization org-uOtiSEwvUnroadaOnJJquBEC on tokens per min (TPM)").
ORG, PROJECT = "org-AbCdEf1234567890GhIjKlMn", "proj_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"


def test_a_key_holding_an_organization_id_is_masked_whole() -> None:
    """Account ids were masked first: the key's `org-...` part became a mask, the key no longer
    matched, and its start ("sk-live-") reached users beside a mask of the rest."""
    masked = mask_in(f"Incorrect API key provided: {KEY}. Find your key at ...", KEY)
    assert KEY not in masked and "sk-live-" not in masked, masked
    assert mask_secret(KEY) in masked, masked


def test_a_key_cut_at_the_end_of_a_text_is_masked() -> None:
    masked = mask_in(f"Incorrect API key provided: {KEY[:20]}", KEY)
    assert KEY[:20] not in masked and masked.endswith(mask_secret(KEY)), masked


def test_organization_and_project_ids_are_masked_the_rest_kept() -> None:
    text = f"Rate limit reached in organization {ORG} (project {PROJECT})."
    masked = mask_in(text, KEY)
    assert ORG not in masked and PROJECT not in masked, masked
    assert masked.startswith("Rate limit reached in organization "), masked


def test_real_organization_and_project_ids_are_masked_at_the_end_too() -> None:
    for text in (f"in organization {ORG}", f"project {PROJECT}", f"({ORG}, {PROJECT})."):
        masked = mask_in(text, KEY)
        assert ORG[:6] not in masked and PROJECT[:7] not in masked, masked


def test_a_real_id_cut_at_the_end_of_a_text_is_masked() -> None:
    for cut in (ORG[:14], PROJECT[:12]):
        masked = mask_in(f"Rate limit reached in organization {cut}", KEY)
        assert cut not in masked and masked.startswith("Rate limit reached in "), masked


def test_words_that_are_not_ids_are_kept() -> None:
    """Model names and words (`org-Llama-3B`, `proj_main`, `org-x`) were masked: a capital or
    a digit after `org-`/`proj_`, or anything at the end of a text, was taken for an id."""
    words = ("org-Llama-3B", "proj_main", "org-x", "proj_A1")
    ends = [f"The model is {word}" for word in words]
    within = [f"The model {word} does not exist." for word in (*words, "org-Llama3B")]
    for text in ends + within:
        assert mask_in(text, KEY) == text, (text, mask_in(text, KEY))


def test_longer_runs_than_an_id_are_not_taken_for_one() -> None:
    """Such runs read as random are masked whole as any key-like token is (an id taken in them
    would leave its `X`/`x` beside an id's mask)."""
    longer = (f"{ORG}X", f"x{PROJECT}")
    text = f"see {longer[0]} and {longer[1]} here"
    wanted = f"see {mask_secret(longer[0])} and {mask_secret(longer[1])} here"
    assert mask_in(text, KEY) == wanted, mask_in(text, KEY)


@pytest.mark.parametrize(
    "secret",
    [
        "3fd7-1907-de24-bfbf-0a9c-77e1",  # a token in short groups (recovery codes, licences)
        "RIXI-6J0H-25C6-QW8P-ZZ41-K9D2",
        "3375612049-pejpbdtajknhgofh",  # digits and a long random lowercase run
    ],
)
def test_a_token_only_shaped_like_a_name_is_still_masked(secret: str) -> None:
    """A long token is left readable as a name only when a part of it reads as a word (five
    letters or more, none of them a random run longer than a word): a dated model id does,
    groups of four characters do not."""
    assert secret not in mask_tokens(f"refused: {secret}")


@pytest.mark.parametrize(
    "name",
    ["claude-sonnet-4-5-20250929", "Meta-Llama-3-70B-Instruct", "claude-3-haiku-20240307"],
)
def test_a_dated_model_name_stays_readable(name: str) -> None:
    assert name in mask_tokens(f"model {name} refused")


AWS_KEY_ID, AWS_TEMP_ID = "AKIAIOSFODNN7EXAMPLE", "ASIAY34FZKBOKMUTVV7A"
HF_TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"  # 34 letters, as Hugging Face's are
BASE64_SECRETS = (
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # an AWS secret access key (AWS's example)
    "+We9r98OczdCDBP49dQPbOB50bmHN28HvLgSh/3IwDg=",  # 32 random bytes, as `openssl rand -base64`
    "wdRVl6JC/fEfjysaOfPD5pMRQ1HcvtQH",
    "uZ6DBt2n+KYeApqKP0FbAg==",  # 16 bytes
)


@pytest.mark.parametrize("secret", [AWS_KEY_ID, AWS_TEMP_ID, HF_TOKEN, *BASE64_SECRETS])
@pytest.mark.parametrize("around", ["refused: {}", "key={}.", "({}, expired)", "{}"])
def test_aws_hugging_face_and_base64_secrets_are_masked(secret: str, around: str) -> None:
    """AWS access key ids (`AKIA`/`ASIA` and 16 capitals or digits: 20 characters, under the
    24 of a bare token), Hugging Face tokens (`hf_` and letters, no digit among them) and
    standard base64 with `+` or `/` (cut into runs shorter than a token's) reached logs whole."""
    masked = mask_tokens(around.format(secret))
    assert secret not in masked and secret[4:-4] not in masked, masked
    for part in secret.replace("+", "/").split("/"):
        assert len(part) < 10 or part[3:-4] not in masked, (part, masked)


@pytest.mark.parametrize("secret", [BASE64_SECRETS[0], BASE64_SECRETS[2]])
def test_base64_secrets_in_a_path_of_words_are_masked(secret: str) -> None:
    """A path of words reads as no secret (below), but a segment of it that reads as random
    base64 still gets the whole run masked."""
    masked = mask_tokens(f"GET /api/users/keys/{secret}/info")
    assert not any(len(part) >= 7 and part in masked for part in secret.split("/")), masked


@pytest.mark.parametrize(
    "text",
    [
        "see /Users/Alice/Documents2024/Reports and /home/Alice/Projects/Box2024/data",
        "no file /var/lib/Codelace/Data2/Backups/box.db or /api/v1/Models/GPT4o/Completions",
        "https://api.openai.com/v1/chat/completions and https://huggingface.co/meta-llama/Llama-3.1-8B",
        "model meta/Llama3/Instruct70B/Weights, Qwen/Qwen2.5-Coder-32B-Instruct, input/output",
        "pip install hf_transfer; hf_hub_download(repo_id=x); and/or TCP/IP; ASIA, AKIA",
        "Meta-Llama-3.1-70B-Instruct-Turbo claude-sonnet-4-5-20250929 text/event-stream",
        # an Azure deployment's path, a vLLM model served by its folder: segments of short
        # pieces (gpt-4-o-Prod, Llama-3-p-1) among words, no `+` or padding
        "Cannot POST /openai/deployments/gpt4oProd/chat/completions",
        "The model /home/ubuntu/models/Llama3p1/8B/Instruct does not exist",
        "/opt/models/Phi3Mini4k/instruct and accounts/MyAccount/deployments/gpt4oDeploy",
    ],
)
def test_paths_model_names_and_words_with_slashes_stay_readable(text: str) -> None:
    assert mask_tokens(text) == text


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("sk-proj-" + "a" * 40 + "Zq9X", "sk-…Zq9X"),  # a real key's length: start and end
        ("sk-fake-key-0001", "sk-…0001"),  # 16 characters: still 7 of them shown
        ("abcdefghi1234z", "…4z"),  # 8 to 15: its last 2 only (7 were half of it)
        ("sk-ab12cd9", "…d9"),  # 4 were a third of a 12-character key and more
        ("k3y-9x7Q", "…7Q"),
        ("x9Q2k7", "…"),  # under 8: nothing
    ],
)
def test_a_short_keys_hint_shows_less_of_it(key: str, hint: str) -> None:
    """A key of 9 to 12 characters kept its last 4 in its hint (a third of it or more, in the
    dashboard, `providers list`, the audit log and every log line naming the key)."""
    assert mask_secret(key) == hint


# Keys whose body (what follows the prefix) alone is below the shape rule: pieces shorter than a
# token's 24 characters, or letters of one case only
PIECES_KEY = "sk-proj-" + "Zq8L-ab_x9Kd-Mn4" + "-pQ7r_Ws2T-u"
LETTERS_KEY = "sk-ant-api03-" + "pejpbdtajknhgofhqzmxwrvlcs"


@pytest.mark.parametrize(
    ("key", "body"),
    [(PIECES_KEY, PIECES_KEY[8:]), (LETTERS_KEY, LETTERS_KEY[13:]), ("gsk_" + "x" * 30, "x" * 30)],
)
def test_a_keys_body_echoed_without_its_prefix_is_masked(key: str, body: str) -> None:
    """An upstream (or a proxy before it) that says "invalid key Zq8L..." without the key's
    `sk-proj-` showed the whole key but its prefix to the client and the log."""
    for text in (f"invalid key {body}", f"invalid key {body}.", f"key '{body}' was revoked"):
        masked = mask_in(text, key)
        assert body not in masked and body[-12:] not in masked, masked
        assert mask_secret(key) in masked and masked.startswith(text[:4]), masked


@pytest.mark.parametrize("key", [PIECES_KEY, LETTERS_KEY])
def test_a_keys_part_shown_is_masked(key: str) -> None:
    """Its last 8 characters or more (after stars or dots), or any 12 of its body in a row."""
    tails = [(f"invalid key ****{key[-n:]}, try again", key[-n:]) for n in (8, 11, 20)]
    runs = [
        (f"the key {key[-24:-10]} is unknown", key[-24:-10]),
        (f"seen {key[-20:-6]}!", key[-20:-6]),
    ]
    for text, part in tails + runs:
        masked = mask_in(text, key)
        assert part not in masked and part[:8] not in masked, (text, masked)
        assert masked.startswith(text[:5]), masked


def test_words_sharing_a_keys_short_pieces_are_kept() -> None:
    """Shorter pieces of a key (under 12 characters of it in a row, an ending under 8) are no
    sign of it: the words around them are kept."""
    key = "sk-" + "invalidrequest" + "-model-error"  # a test key made of words
    texts = (
        "invalid request: model error",
        "the model-errors list",
        "the model error",
        "an invalidrequ",
    )
    for text in texts:
        assert mask_in(text, key) == text, mask_in(text, key)
