"""
The exact k best label sequences of a linear-chain CRF (k-best Viterbi), batched; the arguments
already checked by :func:`linear_chain.kbest`, which is the public entry point.
"""
import torch


def kbest(emissions, transitions, mask, k: int, start, end):
    """
    ``emissions`` ``(B, n, L)``, ``transitions`` ``(L, L)`` ``[from, to]``, ``mask`` ``(B, n)`` bool,
    ``start``/``end`` ``(L,)``, ``k >= 1``. Returns ``(tags (B, k, n) long, scores (B, k))`` as
    :func:`linear_chain.kbest` documents.
    """
    batch, n, num_labels = emissions.shape
    device = emissions.device
    neg_inf = float("-inf")
    if n == 0:
        scores = emissions.new_full((batch, k), neg_inf)
        scores[:, 0] = 0.0
        return torch.zeros(batch, k, 0, dtype=torch.long, device=device), scores
    # Sentences sorted by length, longest first: at position i only the first active[i] rows still
    # run, so padding costs nothing (as in packed sequences). Results are put back in input order.
    lengths = mask.sum(1)
    order = lengths.argsort(descending=True, stable=True)
    emissions = emissions.detach()[order]
    active = (lengths[order].unsqueeze(0) > torch.arange(n, device=device).unsqueeze(1)).sum(1).tolist()
    transitions = transitions.detach()
    start, end = start.detach(), end.detach()
    # alpha[b, label, rank]: the rank-th best prefix score ending in `label` at the current position
    alpha = emissions.new_full((batch, num_labels, k), neg_inf)
    alpha[:, :, 0] = start.unsqueeze(0) + emissions[:, 0]
    to_from = transitions.t().unsqueeze(0).expand(batch, -1, -1)  # [b, to, from]
    # Pruned candidates (exact): rank each previous label by its best prefix score plus the
    # transition (its "head"). An entry of rank r in the list with the j-th best head (both 0-based)
    # is beaten by j other heads and r entries of its own list, so it can be among the k best only
    # if j + r < k: k(k+1)/2 candidates instead of L*k, which is what makes top-k cheap.
    num_lists = min(num_labels, k)
    pairs = [(j, r) for j in range(num_lists) for r in range(k - j)]
    list_index = torch.tensor([j for j, _ in pairs], device=device).expand(batch, num_labels, -1)
    rank_index = torch.tensor([r for _, r in pairs], device=device)
    # pointers: (rows, pointer[b, label, rank] = previous label * k + rank) for the active rows
    pointers = []
    for i in range(1, n):
        rows = active[i]
        if rows == 0:
            break
        current = alpha[:rows]
        heads = current[:, :, 0].unsqueeze(1) + to_from[:rows]  # (rows, to, from)
        if k == 1:
            best, index = heads.max(dim=2, keepdim=True)
        else:
            ranked = heads.topk(num_lists, dim=2).indices  # (rows, to, num_lists)
            previous = ranked.gather(2, list_index[:rows])  # (rows, to, P)
            flat = previous * k + rank_index
            values = current.reshape(rows, 1, num_labels * k).expand(-1, num_labels, -1).gather(2, flat)
            values = values + to_from[:rows].gather(2, previous)
            best, position = values.topk(k, dim=2)  # (rows, to, k), sorted
            index = flat.gather(2, position)
        alpha[:rows] = best + emissions[:rows, i].unsqueeze(2)
        pointers.append((rows, index.reshape(rows, num_labels * k)))
    final = (alpha + end.view(1, num_labels, 1)).reshape(batch, num_labels * k)
    scores, index = final.topk(k, dim=1)  # (B, k): label * k + rank at the last real position
    steps = [index // k]
    for rows, pointer in reversed(pointers):
        index = index.clone()
        index[:rows] = pointer.gather(1, index[:rows])
        steps.append(index // k)
    steps.reverse()
    tags = torch.stack(steps, dim=2)  # (B, k, positions reached)
    if tags.size(2) < n:
        tags = torch.cat([tags, tags.new_zeros(batch, k, n - tags.size(2))], dim=2)
    unsorted = torch.empty_like(tags)
    unsorted[order] = tags
    tags = unsorted * mask.unsqueeze(1).long()
    scores = scores.new_empty(scores.shape).index_copy_(0, order, scores)
    empty = ~mask[:, 0]
    if empty.any():
        empty_scores = scores.new_full((k,), neg_inf)
        empty_scores[0] = 0.0
        scores = torch.where(empty.unsqueeze(1), empty_scores.unsqueeze(0), scores)
    return tags, scores
