"""
The fused Triton kernels of ``structures.fused_chain`` against brute-force enumeration and the PyTorch
path of ``structures.linear_chain``.

Without a GPU the kernels run in Triton's interpreter (``tests/conftest.py`` sets ``TRITON_INTERPRET=1``
before Triton is imported), on CPU tensors: the same kernel code, executed with numpy. With a GPU they
run compiled on CUDA tensors, and the last tests also go through ``linear_chain``'s CUDA dispatch and
compare it with the CPU path.
"""
import pytest
import torch

from allennlp_structkd.structures import linear_chain
from tests import brute_force

triton = pytest.importorskip("triton")


INTERPRETED = triton.knobs.runtime.interpret


@pytest.fixture(scope="module")
def fused():
    """``fused_chain``, its kernels interpreted (CPU tensors) or compiled (CUDA tensors)."""
    if not INTERPRETED and not torch.cuda.is_available():
        pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1")
    from allennlp_structkd.structures import fused_chain

    return fused_chain


DEVICE = "cpu" if INTERPRETED else "cuda"


def random_batch(seed, lengths, num_labels, dtype=torch.float32, forbid=0.0, scale=2.0, device=None):
    g = torch.Generator().manual_seed(seed)
    batch, n = len(lengths), max(max(lengths), 1)
    emissions = (torch.randn(batch, n, num_labels, generator=g) * scale).to(dtype)
    transitions = torch.randn(num_labels, num_labels, generator=g) * scale
    transitions[torch.rand(num_labels, num_labels, generator=g) < forbid] = float("-inf")
    start = torch.randn(num_labels, generator=g)
    end = torch.randn(num_labels, generator=g)
    mask = torch.arange(n).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return tuple(t.to(device or DEVICE) for t in (emissions, transitions, mask, start, end))


def on_cpu(*tensors):
    return tuple(t.cpu() for t in tensors)


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual.float().cpu(), expected.float().cpu(), atol=atol, rtol=1e-5)


def test_kernels_match_enumeration(fused):
    emissions, transitions, mask, start, end = random_batch(0, [4, 1, 3], 3)
    log_z, log_unary, log_pair = fused.forward_backward(emissions, transitions, mask, start, end)
    emissions, transitions, mask, start, end = on_cpu(emissions, transitions, mask, start, end)
    for b in range(3):
        length = int(mask[b].sum())
        ref_z, ref_unary, ref_pair = brute_force.chain_marginals(
            emissions[b].double(), transitions.double(), length, start.double(), end.double()
        )
        assert log_z[b].item() == pytest.approx(ref_z, abs=1e-5)
        close(log_unary[b, :length].exp(), ref_unary[:length])
        close(log_pair[b, 1:length].exp(), ref_pair[1:length])
        assert (log_unary[b, length:] == float("-inf")).all() and (log_pair[b, 0] == float("-inf")).all()


@pytest.mark.parametrize(
    "seed, lengths, num_labels, forbid",
    [(1, [7, 3, 0, 1, 7], 5, 0.0), (2, [6, 6], 9, 0.3), (3, [2, 5, 1], 1, 0.0), (4, [33], 17, 0.5)],
)
def test_kernels_match_the_pytorch_path(fused, seed, lengths, num_labels, forbid):
    arguments = random_batch(seed, lengths, num_labels, forbid=forbid)
    reference = on_cpu(*arguments)
    close(fused.log_partition(*arguments), linear_chain.log_partition(*reference))
    log_z, log_unary, log_pair = fused.forward_backward(*arguments)
    ref_z, ref_unary, ref_pair = linear_chain.forward_backward(*reference)
    close(log_z, ref_z)
    # compare probabilities: log marginals of impossible events are -inf on both paths
    close(log_unary.exp(), ref_unary.exp())
    close(log_pair.exp(), ref_pair.exp())
    unary, pair = fused.marginals(*arguments)
    close(unary, ref_unary.exp())
    close(pair, ref_pair.exp())
    only_unary, none = fused.marginals(*arguments, pairwise=False)
    assert none is None
    close(only_unary, unary)


@pytest.mark.parametrize("needs", [(True, True, True, True), (True, False, False, False), (False, True, True, False)])
def test_log_partition_gradients_match_the_pytorch_path(fused, needs):
    emissions, transitions, mask, start, end = random_batch(5, [6, 2, 0, 4], 4, forbid=0.2)
    weights = torch.tensor([1.0, -2.0, 3.0, 0.5])

    def gradients(function, device):
        inputs = [t.to(device).clone().requires_grad_(need) for t, need in zip((emissions, transitions, start, end), needs)]
        log_z = function(inputs[0], inputs[1], mask.to(device), inputs[2], inputs[3])
        (log_z * weights.to(device)).sum().backward()
        return [t.grad for t in inputs]

    ours = gradients(fused.log_partition, DEVICE)
    references = gradients(linear_chain.log_partition, "cpu")
    for mine, reference, need in zip(ours, references, needs):
        if need:
            close(mine, reference)
        else:
            assert mine is None and reference is None


def test_half_precision_emissions_are_accumulated_in_float32(fused):
    emissions, transitions, mask, start, end = random_batch(6, [40, 17, 3], 9, dtype=torch.bfloat16, scale=4.0)
    upcast = on_cpu(emissions.float(), transitions, mask, start, end)
    log_z = fused.log_partition(emissions, transitions, mask, start, end)
    assert log_z.dtype == torch.float32
    close(log_z, linear_chain.log_partition(*upcast))
    close(fused.marginals(emissions, transitions, mask, start, end)[0], linear_chain.marginals(*upcast)[0])
    # the PyTorch path upcasts too, so both paths agree on half-precision input
    close(linear_chain.log_partition(*on_cpu(emissions, transitions, mask, start, end)), log_z)
    leaf = emissions.clone().requires_grad_()
    fused.log_partition(leaf, transitions, mask, start, end).sum().backward()
    assert leaf.grad.dtype == torch.bfloat16


def test_supports_names_what_the_kernels_serve(fused):
    assert fused.supports(torch.zeros(2, 3, 17))
    assert fused.supports(torch.zeros(2, 3, 17, dtype=torch.bfloat16))
    assert not fused.supports(torch.zeros(2, 3, 17, dtype=torch.float64))  # float64 stays on PyTorch
    assert not fused.supports(torch.zeros(2, 3, fused.MAX_LABELS + 1))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_path_matches_cpu_path(dtype):
    emissions, transitions, mask, start, end = random_batch(
        7, [50, 31, 0, 1, 50, 12], 17, dtype=dtype, forbid=0.2, device="cpu"
    )
    cpu = (emissions, transitions, mask, start, end)
    gpu = tuple(t.cuda() for t in cpu)
    close(linear_chain.log_partition(*gpu).cpu(), linear_chain.log_partition(*cpu))
    for ours, reference in zip(linear_chain.marginals(*gpu), linear_chain.marginals(*cpu)):
        close(ours.cpu(), reference)
    close(linear_chain.unary_marginals(*gpu).cpu(), linear_chain.unary_marginals(*cpu))
    leaves = [t.clone().requires_grad_() for t in (emissions, transitions, start, end)]
    linear_chain.log_partition(leaves[0], leaves[1], mask, leaves[2], leaves[3]).sum().backward()
    cuda_leaves = [t.cuda().requires_grad_() for t in (emissions, transitions, start, end)]
    linear_chain.log_partition(cuda_leaves[0], cuda_leaves[1], mask.cuda(), cuda_leaves[2], cuda_leaves[3]).sum().backward()
    for ours, reference in zip(cuda_leaves, leaves):
        close(ours.grad.cpu(), reference.grad)


@cuda
def test_gpu_differentiable_marginals_stay_on_the_pytorch_path():
    emissions, transitions, mask, start, end = random_batch(8, [5, 3], 4, device="cuda")
    emissions.requires_grad_()
    unary, _ = linear_chain.marginals(emissions, transitions, mask, start, end)
    unary[:, :, 0].sum().backward()
    assert emissions.grad is not None and torch.isfinite(emissions.grad).all()


# --- the semi-Markov kernel of structures.fused_span -----------------------------------------------


@pytest.fixture
def fused_spans(monkeypatch):
    """``span_dp`` with its sums routed through the fused kernel (interpreted on CPU, compiled on GPU)."""
    if not INTERPRETED and not torch.cuda.is_available():
        pytest.skip("Triton kernels need a GPU or TRITON_INTERPRET=1")
    from allennlp_structkd.structures import fused_span, span_dp

    if INTERPRETED:
        monkeypatch.setattr(span_dp, "_fused", lambda span_lse: fused_span)
    return span_dp


def random_spans(seed, lengths, num_types, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    batch, n = len(lengths), max(max(lengths), 1)
    scores = torch.randn(batch, n, n, num_types, generator=g, dtype=torch.float64) * scale
    mask = torch.arange(n).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return scores, mask


def test_span_kernel_matches_enumeration(fused_spans):
    scores, mask = random_spans(9, [4, 1, 0, 3], 2)
    log_z = fused_spans.log_partition(scores.to(DEVICE), mask.to(DEVICE)).cpu()
    marginals = fused_spans.bioes_marginals(scores.to(DEVICE), mask.to(DEVICE)).cpu()
    for b in range(len(mask)):
        length = int(mask[b].sum())
        ref_z, ref_marginals, _ = brute_force.bioes_marginals(scores[b], length)
        assert log_z[b].item() == pytest.approx(ref_z, rel=1e-9, abs=1e-9)
        torch.testing.assert_close(marginals[b, :length], ref_marginals[:length], atol=1e-9, rtol=1e-9)
        assert (marginals[b, length:] == 0).all()


@pytest.mark.parametrize("seed, lengths, num_types, scale", [(10, [9, 2, 0, 9], 3, 2.0), (11, [40, 13], 4, 10.0)])
def test_span_kernel_matches_the_pytorch_path(fused_spans, seed, lengths, num_types, scale):
    from allennlp_structkd.structures import fused_span

    scores, mask = random_spans(seed, lengths, num_types, scale)
    valid = fused_spans._valid_spans(scores, mask)
    span_lse = torch.logsumexp(valid, dim=3)
    lengths = mask.long().sum(1)
    f, g = fused_span.prefix_suffix_sums(span_lse.to(DEVICE), lengths.to(DEVICE), fused_spans.NEG)
    ref_f, ref_g = fused_spans._prefix_suffix_sums(valid, span_lse, lengths)
    torch.testing.assert_close(f.cpu(), ref_f, atol=1e-9, rtol=1e-12)
    torch.testing.assert_close(g.cpu(), ref_g, atol=1e-9, rtol=1e-12)
