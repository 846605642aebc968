"""The official `openai` Python package against a live `confab serve` with the embedded
engine and SmolLM2-135M-Instruct. Run by scripts/test.sh with TEST_CONFAB_BIN and TEST_MODELS_DIR (no CONFAB_ prefix:
the server would take it for a configuration key).

With TEST_CONFAB_BASE_URL (e.g. a split deployment's gateway, as the cluster test in
crates/confab/tests/it/cluster runs it) the tests use that deployment instead of starting a
server: it must serve the same model; they register a user of their own there."""

import json
import os
import subprocess
import tempfile
import urllib.request
import uuid

import openai
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"


def _post(url, body, token=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _account(base, email):
    """Registers `email` at `base` and makes its keys: the fixture's value."""
    tokens = _post(f"{base}/api/v1/auth/register",
                   {"email": email, "password": "correct horse battery", "name": "SDK"})
    access = tokens["access_token"]
    inference_key = _post(f"{base}/api/v1/auth/api-keys",
                          {"name": "sdk", "scopes": ["inference"]}, access)["key"]
    chat_key = _post(f"{base}/api/v1/auth/api-keys", {"name": "chat", "scopes": ["chat"]}, access)["key"]
    return {"base": f"{base}/v1", "key": inference_key, "chat_key": chat_key}


@pytest.fixture(scope="module")
def server():
    deployment = os.environ.get("TEST_CONFAB_BASE_URL")
    if deployment:
        yield _account(deployment.rstrip("/"), f"sdk-{uuid.uuid4().hex[:12]}@example.com")
        return
    binary = os.environ["TEST_CONFAB_BIN"]
    models = os.environ["TEST_MODELS_DIR"]
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(
            os.environ,
            CONFAB_INFERENCE__MODELS_DIR=models,
            CONFAB_INFERENCE__ENGINE__CONTEXT_SIZE="512",
            CONFAB_LOG__FORMAT="json",
        )
        proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
            cwd=data_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        addr = None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message") == "listening":
                addr = entry["addr"]
                break
        if addr is None:
            proc.kill()
            pytest.fail("confab serve exited before listening:\n" + "".join(seen))
        base = f"http://{addr}"
        try:
            yield _account(base, "sdk@example.com")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server["base"], api_key=server["key"], max_retries=0)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids


def test_chat_completion(client):
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=30,
    )
    assert completion.object == "chat.completion"
    assert "Paris" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_streaming_with_usage(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        temperature=0,
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_json_schema_output(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe a dog as JSON with name and age."}],
        temperature=0,
        max_tokens=100,
        response_format={"type": "json_schema", "json_schema": {"name": "dog", "schema": schema, "strict": True}},
    )
    dog = json.loads(completion.choices[0].message.content)
    assert isinstance(dog["name"], str) and isinstance(dog["age"], int)


def test_embeddings_in_base64(client):
    # The SDK asks for base64 by default and decodes it back to floats.
    result = client.embeddings.create(model="all-MiniLM-L6-v2", input=["a cat", "a dog"])
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 384 for d in result.data)
    norm = sum(x * x for x in result.data[0].embedding)
    assert abs(norm - 1.0) < 1e-3
    assert result.usage.prompt_tokens > 0
    floats = client.embeddings.create(model="all-MiniLM-L6-v2", input="a cat", encoding_format="float")
    assert abs(floats.data[0].embedding[0] - result.data[0].embedding[0]) < 1e-6


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert error.value.code == "model_not_found"


def test_over_long_prompt_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 2000}])
    assert error.value.code == "context_length_exceeded"


def test_bad_key_is_unauthorized(server):
    bad = openai.OpenAI(base_url=server["base"], api_key="cfk_not_a_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_key_without_inference_scope_is_refused(server):
    chat_only = openai.OpenAI(base_url=server["base"], api_key=server["chat_key"], max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        chat_only.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
