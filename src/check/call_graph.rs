//! The strongly connected components of the `run_service` call graph
//! (Tarjan's algorithm, without recursion: a chain of thousands of
//! endpoints must not overflow the stack). Every transitive question the
//! checker asks of the graph — what an endpoint can update, read, or do
//! for its connection; where it calls itself — is answered once per
//! component, callees first, so the cost follows the calls, not the
//! endpoints times their depth.

use std::hash::Hash;

use rustc_hash::FxHashMap as HashMap;

/// The components of the graph over `nodes` whose edges `next` gives, in
/// reverse topological order: a component comes after every component it
/// reaches. Within a component, nodes keep the order of `nodes`.
pub fn components<K, I>(nodes: &[K], mut next: impl FnMut(K) -> I) -> Vec<Vec<K>>
where
    K: Copy + Eq + Hash,
    I: IntoIterator<Item = K>,
{
    let position: HashMap<K, usize> = nodes.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let edges: Vec<Vec<usize>> = nodes
        .iter()
        .map(|&k| {
            next(k)
                .into_iter()
                .filter_map(|t| position.get(&t).copied())
                .collect()
        })
        .collect();
    let n = nodes.len();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut out: Vec<Vec<K>> = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // (node, the next of its edges to look at)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut edge)) = work.last_mut() {
            if let Some(&target) = edges[node].get(*edge) {
                *edge += 1;
                if index[target] == UNSEEN {
                    index[target] = counter;
                    low[target] = counter;
                    counter += 1;
                    stack.push(target);
                    on_stack[target] = true;
                    work.push((target, 0));
                } else if on_stack[target] {
                    low[node] = low[node].min(index[target]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut members = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    members.push(member);
                    if member == node {
                        break;
                    }
                }
                members.sort_unstable();
                out.push(members.into_iter().map(|i| nodes[i]).collect());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_come_callees_first_and_cycles_together() {
        // a → b → c → b, c → d
        let nodes = ["a", "b", "c", "d"];
        let edges = |k: &str| -> Vec<&str> {
            match k {
                "a" => vec!["b"],
                "b" => vec!["c"],
                "c" => vec!["b", "d"],
                _ => vec![],
            }
        };
        let found = components(&nodes, edges);
        assert_eq!(found, vec![vec!["d"], vec!["b", "c"], vec!["a"]]);
    }

    #[test]
    fn a_long_chain_needs_no_deep_stack() {
        let nodes: Vec<usize> = (0..200_000).collect();
        let found = components(&nodes, |k| (k > 0).then(|| k - 1));
        assert_eq!(found.len(), nodes.len());
        assert_eq!(found[0], vec![0]);
    }
}
