//! The parse tree of one declaration: what the builder reads.
//!
//! Both parsers fill it: the hand-written one (`descent`) for every text it
//! accepts, pest (`parser`) for the rest. It holds what pest's pairs hold
//! and nothing more: one node per visible rule of grammar/svc.pest, in
//! pre-order, with its start and end; the builder walks it through
//! [`Pair`], whose methods are named as pest's are.

use super::parser::Rule;

/// One rule's match. Positions are byte offsets into the parsed text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub rule: Rule,
    pub start: u32,
    pub end: u32,
    /// The index of the node after this one's last descendant.
    pub next: u32,
}

/// The nodes of one parse of `text`.
#[derive(Debug)]
pub struct Tree<'t> {
    text: &'t str,
    nodes: Vec<Node>,
}

impl<'t> Tree<'t> {
    pub(super) fn new(text: &'t str, nodes: Vec<Node>) -> Tree<'t> {
        Tree { text, nodes }
    }

    /// pest's pairs as a tree (texts longer than 4 GiB are never read).
    pub fn from_pest(text: &'t str, pairs: pest::iterators::Pairs<'t, Rule>) -> Tree<'t> {
        fn add(pair: pest::iterators::Pair<'_, Rule>, nodes: &mut Vec<Node>) {
            let index = nodes.len();
            let span = pair.as_span();
            nodes.push(Node {
                rule: pair.as_rule(),
                start: span.start() as u32,
                end: span.end() as u32,
                next: 0,
            });
            for child in pair.into_inner() {
                add(child, nodes);
            }
            nodes[index].next = nodes.len() as u32;
        }
        let mut nodes = Vec::new();
        for pair in pairs {
            add(pair, &mut nodes);
        }
        Tree { text, nodes }
    }

    /// The first top-level node (`next_item`).
    pub fn root(&self) -> Option<Pair<'_>> {
        (!self.nodes.is_empty()).then_some(Pair {
            text: self.text,
            nodes: &self.nodes,
            index: 0,
        })
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}

/// One node and the tree it is in.
#[derive(Clone, Copy, Debug)]
pub struct Pair<'i> {
    text: &'i str,
    nodes: &'i [Node],
    index: usize,
}

/// Where a node starts and ends.
#[derive(Clone, Copy, Debug)]
pub struct Extent {
    start: usize,
    end: usize,
}

impl Extent {
    pub fn start(&self) -> usize {
        self.start
    }

    pub fn end(&self) -> usize {
        self.end
    }
}

impl<'i> Pair<'i> {
    fn node(&self) -> &Node {
        &self.nodes[self.index]
    }

    pub fn as_rule(&self) -> Rule {
        self.node().rule
    }

    pub fn as_str(&self) -> &'i str {
        let node = self.nodes[self.index];
        &self.text[node.start as usize..node.end as usize]
    }

    pub fn as_span(&self) -> Extent {
        let node = self.node();
        Extent {
            start: node.start as usize,
            end: node.end as usize,
        }
    }

    /// The node's children, in order.
    pub fn into_inner(self) -> Pairs<'i> {
        Pairs {
            text: self.text,
            nodes: self.nodes,
            index: self.index + 1,
            end: self.node().next as usize,
        }
    }
}

/// Sibling nodes, in order.
#[derive(Clone, Debug)]
pub struct Pairs<'i> {
    text: &'i str,
    nodes: &'i [Node],
    index: usize,
    end: usize,
}

impl<'i> Iterator for Pairs<'i> {
    type Item = Pair<'i>;

    fn next(&mut self) -> Option<Pair<'i>> {
        if self.index >= self.end {
            return None;
        }
        let pair = Pair {
            text: self.text,
            nodes: self.nodes,
            index: self.index,
        };
        self.index = self.nodes[self.index].next as usize;
        Some(pair)
    }
}
