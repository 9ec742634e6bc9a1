"""The demo server: a model's failure is a 500 with a short message (the log has the rest), a model that is not
one of the project's is refused at start, and a connection that sends half a request is closed after a while."""
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from allennlp.common.checks import ConfigurationError

from allennlp_structkd.demo import DemoServer


@pytest.fixture(scope="module")
def demo(teacher_archive, maxent_teacher_archive):
    server = DemoServer(teacher_archive, maxent_teacher_archive, lang="es", request_timeout=1.0)
    httpd = server.serve(0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def _get(url):
    try:
        response = urllib.request.urlopen(url, timeout=120)
        return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("failure", [RuntimeError("CUDA out of memory in layer 3"), KeyError("tokens"),
                                     ValueError("internal shape detail")])
def test_a_models_failure_is_a_500_with_a_short_message_and_logged_in_full(demo, monkeypatch, caplog, failure):
    server, url = demo

    def fail(sentence, lang):
        raise failure

    monkeypatch.setattr(server, "predict", fail)
    with caplog.at_level(logging.ERROR, logger="allennlp_structkd.demo"):
        status, body = _get(url + "?" + urllib.parse.urlencode({"sentence": "Juan visitó Madrid ."}))
    assert status == 500 and "The models failed on this sentence" in body
    assert str(failure).strip("'") not in body  # internals stay in the log
    assert any(record.exc_info and record.exc_info[1] is failure for record in caplog.records)


def test_a_model_that_is_not_the_projects_is_refused_at_start(tmp_path):
    """AllenNLP's own simple_tagger, say: refused when the demo starts, not answered 400 at every request."""
    from allennlp.commands.train import train_model
    from allennlp.common import Params

    from tests.conftest import FIXTURES

    params = Params({
        "dataset_reader": {"type": "structkd_conll_ner"},
        "train_data_path": str(FIXTURES / "data" / "ner_es.conll"),
        "model": {"type": "simple_tagger", "text_field_embedder": {"token_embedders": {"tokens": {"type": "embedding",
                  "embedding_dim": 4}}}, "encoder": {"type": "pass_through", "input_dim": 4}},
        "data_loader": {"batch_size": 4},
        "trainer": {"num_epochs": 1, "optimizer": "adam", "cuda_device": -1},
    })
    train_model(params, str(tmp_path / "run"))
    archive = str(tmp_path / "run" / "model.tar.gz")
    with pytest.raises(ConfigurationError, match="holds a SimpleTagger, which this demo cannot show"):
        DemoServer(archive, archive)


def test_an_idle_half_sent_request_is_closed_after_the_read_timeout(demo):
    _, url = demo
    port = int(urllib.parse.urlparse(url).port)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"GET /?sentence=Juan HTTP/1.1\r\nHost: loc")  # and nothing more
        started = time.monotonic()
        connection.settimeout(30)
        assert connection.recv(1024) == b""  # the server closed it
        assert time.monotonic() - started < 20
    assert _get(url)[0] == 200  # and goes on serving
