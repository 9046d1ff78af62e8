"""An inference cluster over a REAL engine: llama.cpp's OpenAI-compatible server (``llama-cpp-python``'s
``python -m llama_cpp.server``) on a host, serving a tiny llama model this test writes itself with the
``gguf`` package (random weights: the test checks the wire, not the prose), driven by the official
``openai`` client through the cluster's endpoint, the server and the host's agent.

llama-cpp-python is built from source by pip (15 CPU-minutes; pip's wheel cache keeps the build):
``pip install -e '.[engine]'`` installs it, as scripts/test does. Without it the test is skipped and
says so."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, api, online_host_id
from test_clusters import create, wait_cluster

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[engine]' builds it)"
)
gguf = pytest.importorskip("gguf", reason="the gguf package is not installed (pip install -e '.[engine]')")
openai = pytest.importorskip("openai")

MODEL = "tiny-llama"
EMBED, HEADS, FF, LAYERS, CONTEXT = 64, 4, 128, 1, 256


def write_tiny_llama(path: Path) -> None:
    """A llama-architecture GGUF with one block of random f32 weights and a SentencePiece vocabulary of
    the special tokens, the 256 byte tokens and a few words."""
    import numpy as np

    words = ["▁the", "▁cluster", "▁answers", "▁hello", "▁world", "▁a", "▁host", "."]
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *words]
    types = [2, 3, 3, *([6] * 256), *([1] * len(words))]  # unknown, control, byte, normal
    scores = [0.0] * len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FF)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    rng = np.random.default_rng(16)

    def weights(*shape: int) -> Any:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    vocab = len(tokens)
    writer.add_tensor("token_embd.weight", weights(vocab, EMBED))
    writer.add_tensor("output_norm.weight", np.ones(EMBED, dtype=np.float32))
    writer.add_tensor("output.weight", weights(vocab, EMBED))
    for n in range(LAYERS):
        writer.add_tensor(f"blk.{n}.attn_norm.weight", np.ones(EMBED, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{n}.{name}.weight", weights(EMBED, EMBED))
        writer.add_tensor(f"blk.{n}.ffn_norm.weight", np.ones(EMBED, dtype=np.float32))
        writer.add_tensor(f"blk.{n}.ffn_gate.weight", weights(FF, EMBED))
        writer.add_tensor(f"blk.{n}.ffn_up.weight", weights(FF, EMBED))
        writer.add_tensor(f"blk.{n}.ffn_down.weight", weights(EMBED, FF))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """llama.cpp's OpenAI-compatible server on a free port, serving the tiny model as ``tiny-llama``."""
    work = tmp_path_factory.mktemp("llama")
    model = work / "tiny.gguf"
    write_tiny_llama(model)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed below
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            MODEL,
            "--n_ctx",
            str(CONTEXT),
            "--n_threads",
            "1",
            "--interrupt_requests",  # on, the cluster's health check would end a generation (docs/api.md)
            "False",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None, (work / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llama.cpp's server did not start"
            time.sleep(0.1)
        yield port
    finally:
        child.kill()
        child.wait()
        log.close()


async def test_real_llama_cpp_engine(server: Server, start_agent: Any, llama_server: int) -> None:
    host_id = await online_host_id(server, start_agent, "llama-box")
    engine = {"kind": "openai", "port": llama_server}
    made = await create(server, name="real", model=MODEL, host_ids=[host_id], engine=engine)
    cluster = await wait_cluster(server, made["id"], lambda c: c["status"] == "active", "active")
    assert cluster["hosts"][0]["models"] == [MODEL]
    async with openai.AsyncOpenAI(api_key=server.token, base_url=made["inference_url"], max_retries=0) as llm:
        assert [m.id for m in (await llm.models.list()).data] == [MODEL]
        messages = [{"role": "user", "content": "hello"}]
        answer = await llm.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
        assert answer.object == "chat.completion" and answer.usage is not None
        # 4 tokens generated; llama-cpp-python counts the usage by tokenizing the text again, which for
        # random byte tokens can be more.
        assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens >= 1
        stream = await llm.chat.completions.create(model=MODEL, messages=messages, max_tokens=4, stream=True)
        chunks = [chunk async for chunk in stream]
        assert chunks and all(chunk.object == "chat.completion.chunk" for chunk in chunks)
        ends = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        ends = ends or [c.model_dump() for c in chunks]  # what came instead, when it fails
        assert ends[-1] in ("length", "stop")  # the last chunk may carry only the usage
    async with api(server) as http:
        host = (await http.get(f"/clusters/{made['id']}")).json()["hosts"][0]
    assert host["completed"] == 2 and host["errors"] == 0 and host["tokens_per_s"] > 0
