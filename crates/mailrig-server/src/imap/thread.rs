//! THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over a search result,
//! and the THREAD response's nested lists.
//!
//! REFERENCES links messages the way Dovecot does where the RFC leaves room
//! (imaptest's `thread*` scripts pin it down): a message's own parent (the
//! last `References:` ID, else `In-Reply-To:`) replaces a parent that other
//! messages' `References:` gave it, a link that would close a loop is
//! ignored, and a duplicate Message-ID counts as none.

use std::collections::HashMap;

use super::sort::Header;

/// How deep a REFERENCES thread nests; below, messages hang flat under the
/// last level (the tree is walked recursively).
const MAX_DEPTH: usize = 256;

/// One message to thread: the number the response names (sequence number
/// or UID), its sequence number for ties, and its header.
pub struct Msg {
    pub number: u32,
    pub seq: usize,
    pub header: Header,
}

/// A thread node: a message (index into the input), or a dummy standing for
/// a message that is referenced but not there, with its children.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub msg: Option<usize>,
    pub children: Vec<Node>,
}

impl Node {
    fn leaf(i: usize) -> Node {
        Node {
            msg: Some(i),
            children: Vec::new(),
        }
    }

    /// (sent date, sequence number) of the node: a dummy's is its first child's.
    fn key(&self, msgs: &[Msg]) -> (i64, usize) {
        match self.msg {
            Some(i) => (msgs[i].header.date, msgs[i].seq),
            None => self
                .children
                .first()
                .map_or((i64::MAX, usize::MAX), |c| c.key(msgs)),
        }
    }

    /// The base subject of the node (a dummy's is its first child's).
    fn subject<'m>(&self, msgs: &'m [Msg]) -> Option<&'m (String, bool)> {
        match self.msg {
            Some(i) => Some(&msgs[i].header.subject),
            None => self.children.first().and_then(|c| c.subject(msgs)),
        }
    }
}

/// Sorts every set of siblings by sent date, then sequence number.
fn sort_siblings(nodes: &mut [Node], msgs: &[Msg]) {
    for n in nodes.iter_mut() {
        sort_siblings(&mut n.children, msgs);
    }
    nodes.sort_by_key(|n| n.key(msgs));
}

/// ORDEREDSUBJECT: messages with one base subject form a thread whose first
/// message (by sent date) is the parent of all the others.
pub fn ordered_subject(msgs: &[Msg]) -> Vec<Node> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&msgs[a], &msgs[b]);
        (&x.header.subject.0, x.header.date, x.seq).cmp(&(
            &y.header.subject.0,
            y.header.date,
            y.seq,
        ))
    });
    let mut threads: Vec<Node> = Vec::new();
    let mut last: Option<&str> = None;
    for i in order {
        let subject = msgs[i].header.subject.0.as_str();
        match threads.last_mut() {
            Some(t) if last == Some(subject) => t.children.push(Node::leaf(i)),
            _ => threads.push(Node::leaf(i)),
        }
        last = Some(subject);
    }
    threads.sort_by_key(|t| t.key(msgs));
    threads
}

/// A message ID's place in the link table: the message that has it (none
/// for a dummy) and its parent.
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
}

struct Links {
    nodes: Vec<Container>,
    ids: HashMap<String, usize>,
}

impl Links {
    fn node(&mut self, id: &str) -> usize {
        if let Some(&n) = self.ids.get(id) {
            return n;
        }
        self.nodes.push(Container {
            msg: None,
            parent: None,
        });
        self.ids.insert(id.to_string(), self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    /// Whether `ancestor` is `node` or above it.
    fn is_ancestor(&self, ancestor: usize, mut node: usize) -> bool {
        loop {
            if node == ancestor {
                return true;
            }
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return false,
            }
        }
    }

    /// Makes `parent` the parent of `child` unless that closes a loop or the
    /// child has another parent already.
    fn link(&mut self, parent: usize, child: usize) {
        if self.is_ancestor(child, parent) {
            return;
        }
        if self.nodes[child].parent.is_none() {
            self.nodes[child].parent = Some(parent);
        }
    }
}

/// REFERENCES: threads from `Message-ID`, `References` and `In-Reply-To`,
/// then threads with the same base subject gathered (RFC 5256 §3 steps 1-6).
pub fn references(msgs: &[Msg]) -> Vec<Node> {
    let mut links = Links {
        nodes: Vec::new(),
        ids: HashMap::new(),
    };
    // (1) Link messages to their parents.
    for (i, m) in msgs.iter().enumerate() {
        let h = &m.header;
        let own = h
            .message_id
            .as_deref()
            .map(|id| links.node(id))
            .filter(|&n| links.nodes[n].msg.is_none());
        let node = own.unwrap_or_else(|| {
            links.nodes.push(Container {
                msg: None,
                parent: None,
            });
            links.nodes.len() - 1
        });
        links.nodes[node].msg = Some(i);
        let parent_id = h.references.last().or(h.in_reply_to.as_ref());
        let parent = parent_id.map(|id| links.node(id));
        if links.nodes[node].parent.is_some() && links.nodes[node].parent != parent {
            links.nodes[node].parent = None;
        }
        if let Some(p) = parent {
            links.link(p, node);
        }
        for pair in h.references.windows(2) {
            let (p, c) = (links.node(&pair[0]), links.node(&pair[1]));
            links.link(p, c);
        }
    }
    // (2)-(3) Each message under its nearest message ancestor (or the top
    // dummy); dummies without messages vanish, a dummy root with one child
    // gives way to it.
    let n = links.nodes.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for c in 0..n {
        if links.nodes[c].msg.is_none() {
            continue;
        }
        let Some(mut up) = links.nodes[c].parent else {
            continue;
        };
        while links.nodes[up].msg.is_none() {
            match links.nodes[up].parent {
                Some(p) => up = p,
                None => break,
            }
        }
        children[up].push(c);
    }
    fn build(c: usize, depth: usize, links: &Links, children: &[Vec<usize>]) -> Node {
        if depth >= MAX_DEPTH {
            // Deeper than any real discussion: the rest hangs flat here, so
            // a crafted chain of References cannot exhaust the stack.
            let mut flat = Vec::new();
            let mut todo: Vec<usize> = children[c].clone();
            while let Some(k) = todo.pop() {
                flat.push(Node {
                    msg: links.nodes[k].msg,
                    children: Vec::new(),
                });
                todo.extend(&children[k]);
            }
            return Node {
                msg: links.nodes[c].msg,
                children: flat,
            };
        }
        Node {
            msg: links.nodes[c].msg,
            children: children[c]
                .iter()
                .map(|&k| build(k, depth + 1, links, children))
                .collect(),
        }
    }
    let mut roots: Vec<Node> = Vec::new();
    for c in (0..n).filter(|&c| links.nodes[c].parent.is_none()) {
        let mut node = build(c, 0, &links, &children);
        if node.msg.is_none() {
            match node.children.len() {
                0 => continue,
                1 => node = node.children.remove(0),
                _ => {}
            }
        }
        roots.push(node);
    }
    // (4) Sort the roots; (5) gather roots with one base subject.
    sort_siblings(&mut roots, msgs);
    let mut roots = merge_subjects(roots, msgs);
    // (6) Sort all siblings again.
    sort_siblings(&mut roots, msgs);
    roots
}

/// RFC 5256 §3 step 5: roots with the same (non-empty) base subject become
/// one thread.
fn merge_subjects(roots: Vec<Node>, msgs: &[Msg]) -> Vec<Node> {
    let subject = |n: &Node| {
        n.subject(msgs)
            .filter(|s| !s.0.is_empty())
            .map(|s| (s.0.clone(), s.1))
    };
    // (A) Which root each subject gathers under.
    let mut table: HashMap<String, usize> = HashMap::new();
    for (i, r) in roots.iter().enumerate() {
        let Some((s, reply)) = subject(r) else {
            continue;
        };
        match table.get(&s) {
            None => {
                table.insert(s, i);
            }
            Some(&t) => {
                let held = &roots[t];
                let held_reply = subject(held).is_some_and(|x| x.1);
                if held.msg.is_some() && (r.msg.is_none() || (held_reply && !reply)) {
                    table.insert(s, i);
                }
            }
        }
    }
    // (B) Merge the others into it.
    let mut slots: Vec<Option<Node>> = roots.into_iter().map(Some).collect();
    for i in 0..slots.len() {
        let Some((s, reply)) = slots[i].as_ref().and_then(&subject) else {
            continue;
        };
        let t = table[&s];
        if t == i {
            continue;
        }
        let (Some(current), Some(held)) = (slots[i].take(), slots[t].take()) else {
            continue;
        };
        let held_reply = subject(&held).is_some_and(|x| x.1);
        slots[t] = Some(match (held.msg.is_none(), current.msg.is_none()) {
            (true, true) => {
                let mut held = held;
                held.children.extend(current.children);
                held
            }
            (true, false) => {
                let mut held = held;
                held.children.push(current);
                held
            }
            (false, false) if reply && !held_reply => {
                let mut held = held;
                held.children.push(current);
                held
            }
            _ => Node {
                msg: None,
                children: vec![held, current],
            },
        });
    }
    slots.into_iter().flatten().collect()
}

/// Appends ` (thread)(thread)...` for `* THREAD` (nothing for no threads).
pub fn write(out: &mut Vec<u8>, threads: &[Node], msgs: &[Msg]) {
    if !threads.is_empty() {
        out.push(b' ');
    }
    for t in threads {
        out.push(b'(');
        members(out, t, msgs);
        out.push(b')');
    }
}

/// A node and what hangs below it: a single child continues the list, more
/// children are nested lists (`1 2 (3)(4 5)`).
fn members(out: &mut Vec<u8>, node: &Node, msgs: &[Msg]) {
    if let Some(i) = node.msg {
        out.extend_from_slice(msgs[i].number.to_string().as_bytes());
        if node.children.is_empty() {
            return;
        }
        out.push(b' ');
    }
    match node.children.as_slice() {
        [only] if node.msg.is_some() => members(out, only, msgs),
        all => {
            for c in all {
                out.push(b'(');
                members(out, c, msgs);
                out.push(b')');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::sort::base_subject;

    fn msg(seq: usize, date: i64, id: &str, refs: &[&str], subject: &str) -> Msg {
        Msg {
            number: seq as u32,
            seq,
            header: Header {
                date,
                subject: base_subject(subject),
                message_id: (!id.is_empty()).then(|| id.to_string()),
                references: refs.iter().map(|s| s.to_string()).collect(),
                ..Header::default()
            },
        }
    }

    fn text(threads: &[Node], msgs: &[Msg]) -> String {
        let mut out = Vec::new();
        write(&mut out, threads, msgs);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_loop_in_references_is_broken_where_the_message_names_its_parent() {
        // imaptest `thread`: b references a then c; c references b.
        let msgs = [
            msg(1, 30, "a", &[], ""),
            msg(2, 10, "b", &["a", "c"], ""),
            msg(3, 20, "c", &["b"], ""),
        ];
        assert_eq!(text(&references(&msgs), &msgs), " (3 2)(1)");
    }

    #[test]
    fn missing_parents_become_dummies_and_one_child_dummies_vanish() {
        let msgs = [
            msg(1, 10, "x", &["gone1"], ""),
            msg(2, 10, "y", &["gone2"], ""),
            msg(3, 10, "z", &["gone2"], ""),
        ];
        assert_eq!(text(&references(&msgs), &msgs), " (1)((2)(3))");
    }

    #[test]
    fn replies_are_gathered_under_their_subject() {
        let msgs = [
            msg(1, 10, "a", &[], "foo"),
            msg(2, 20, "b", &["c"], "Re: foo"),
            msg(3, 30, "d", &[], "other"),
        ];
        assert_eq!(text(&references(&msgs), &msgs), " (1 2)(3)");
    }

    #[test]
    fn same_subject_without_replies_gets_a_dummy_parent() {
        let msgs = [msg(1, 10, "a", &[], "foo"), msg(2, 20, "b", &[], "foo")];
        assert_eq!(text(&references(&msgs), &msgs), " ((1)(2))");
    }

    #[test]
    fn ordered_subject_makes_the_oldest_the_parent() {
        let msgs = [
            msg(1, 40, "", &[], "a"),
            msg(2, 30, "", &[], "b"),
            msg(3, 20, "", &[], "Re: a"),
            msg(4, 10, "", &[], "b"),
            msg(5, 50, "", &[], "c"),
        ];
        assert_eq!(text(&ordered_subject(&msgs), &msgs), " (4 2)(3 1)(5)");
    }

    #[test]
    fn a_very_long_chain_is_cut_to_a_bounded_depth() {
        let msgs: Vec<Msg> = (1..=20_000usize)
            .map(|i| {
                let parent = format!("m{}", i - 1);
                let refs: Vec<&str> = if i > 1 { vec![parent.as_str()] } else { vec![] };
                msg(i, i as i64, &format!("m{i}"), &refs, "")
            })
            .collect();
        let threads = references(&msgs);
        assert_eq!(threads.len(), 1);
        let (mut depth, mut node) = (0, &threads[0]);
        while node.children.len() == 1 {
            node = &node.children[0];
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(node.children.len(), 20_000 - MAX_DEPTH - 1);
        let text = text(&threads, &msgs);
        assert!(text.starts_with(" (1 2 3 "), "{}", &text[..40]);
    }

    #[test]
    fn nothing_to_thread_writes_nothing() {
        assert_eq!(text(&references(&[]), &[]), "");
    }
}
