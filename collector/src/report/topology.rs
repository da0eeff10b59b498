//! Intranet topology from traceroute path observations (issue 4, section 5):
//! the current path of every agent to every traceroute target, drawn as one
//! graph (OPD agent -> hop routers -> target), routers seen by several
//! agents merged into one node so the provincial star/tree shows; and the
//! path changes of the period (when, old hops -> new hops).
//!
//! Pure apart from [`load`]: [`Topology::build`] turns observations into a
//! graph with a layered layout, which [`diagram`] turns into the report
//! model's drawing (the report's appendix, and [`svg`] for the `/jalur`
//! page); JSON reports carry the graph as is.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::Lang;
use super::model::{Diagram, Mark, Shape, Tone};
use crate::store::StoreError;
use crate::store::report::ReportRead;
pub use crate::store::report::{PathFilter as Filter, PathObs};

/// Paths that were in use during the filter's window, by OPD, agent,
/// target, first seen.
pub fn load(r: &dyn ReportRead, f: &Filter) -> Result<Vec<PathObs>, StoreError> {
    r.paths(f)
}

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// An OPD agent (where traceroutes start).
    Agent,
    /// A router on the way (answered with time exceeded).
    Router,
    /// A hop that did not answer.
    Silent,
    /// A traceroute target (data centre, internet).
    Target,
}

/// A graph node with its place in the drawing (units: 1 per column/row).
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Key: `agent:<id>`, `ip:<address>` or `silent:<agent>:<target>:<ttl>`.
    pub id: String,
    /// Kind.
    pub kind: NodeKind,
    /// Address (routers, targets).
    pub address: Option<String>,
    /// Display label.
    pub label: String,
    /// OPDs whose current paths pass here.
    pub opds: Vec<String>,
    /// Column (0: agents).
    pub layer: usize,
    /// Row within the column.
    pub row: usize,
}

/// A link between consecutive hops.
#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    /// Index of the nearer node.
    pub from: usize,
    /// Index of the farther node.
    pub to: usize,
}

/// One path change: an agent's route to a target differed from before.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// OPD.
    pub opd: String,
    /// Agent.
    pub agent: String,
    /// Target.
    pub target: String,
    /// Old path last seen, UTC ms.
    pub old_last_seen_ms: Option<i64>,
    /// New path first seen, UTC ms: the change happened between the two.
    pub at_ms: i64,
    /// Old hops.
    pub old_hops: Vec<String>,
    /// New hops.
    pub new_hops: Vec<String>,
}

/// The intranet topology of a period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Topology {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Columns in the drawing.
    pub layers: usize,
    /// Most rows of any column.
    pub rows: usize,
    /// Path changes first seen in the period, oldest first.
    pub changes: Vec<Change>,
}

impl Topology {
    /// Build the graph from the latest path of every (agent, target) among
    /// `paths`; changes are those whose new path was first seen at or after
    /// `changes_from_ms`.
    pub fn build(paths: &[PathObs], changes_from_ms: i64) -> Topology {
        let mut g = Graph::default();
        for p in latest_paths(paths).values() {
            g.add_path(p);
        }
        let Graph {
            mut nodes,
            edges,
            mut depth,
            ..
        } = g;
        depth.resize(nodes.len(), 0);
        let (layers, rows) = lay_out(&mut nodes, &edges, &mut depth);
        Topology {
            nodes,
            edges: edges
                .into_iter()
                .map(|(from, to)| Edge { from, to })
                .collect(),
            layers,
            rows,
            changes: changes(paths, changes_from_ms),
        }
    }
}

/// The latest observation of every (agent, target).
fn latest_paths(paths: &[PathObs]) -> BTreeMap<(&str, &str), &PathObs> {
    let mut latest: BTreeMap<(&str, &str), &PathObs> = BTreeMap::new();
    for p in paths {
        let e = latest.entry((&p.agent, &p.target)).or_insert(p);
        if (p.last_seen_ms, p.id) > (e.last_seen_ms, e.id) {
            *e = p;
        }
    }
    latest
}

/// The graph while paths are added: nodes merged by key, edges without
/// duplicates, and each node's deepest position along its paths (agent 0,
/// hop at TTL t: t).
#[derive(Default)]
struct Graph {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
    edges: Vec<(usize, usize)>,
    depth: Vec<usize>,
}

impl Graph {
    /// The node with key `id`, added if new; a node seen once as a target
    /// stays a target.
    fn node(
        &mut self,
        id: String,
        kind: NodeKind,
        address: Option<&str>,
        label: String,
        opd: &str,
    ) -> usize {
        let nodes = &mut self.nodes;
        let i = *self.index.entry(id.clone()).or_insert_with(|| {
            nodes.push(Node {
                id,
                kind,
                address: address.map(str::to_string),
                label: label.clone(),
                opds: Vec::new(),
                layer: 0,
                row: 0,
            });
            nodes.len() - 1
        });
        let n = &mut nodes[i];
        if kind == NodeKind::Target && n.kind != NodeKind::Target {
            n.kind = NodeKind::Target;
            n.label = label;
        }
        if !n.opds.iter().any(|o| o == opd) {
            n.opds.push(opd.to_string());
        }
        i
    }

    fn add_path(&mut self, p: &PathObs) {
        let mut prev = self.node(
            format!("agent:{}", p.agent),
            NodeKind::Agent,
            None,
            format!("{} ({})", p.opd, p.agent),
            &p.opd,
        );
        let mut chain = vec![(prev, 0)];
        for (i, h) in p.hops.iter().enumerate() {
            let last = i + 1 == p.hops.len();
            let n = self.hop(p, i, h, last);
            if !self.edges.contains(&(prev, n)) && prev != n {
                self.edges.push((prev, n));
            }
            chain.push((n, i + 1));
            prev = n;
        }
        for (n, d) in chain {
            if self.depth.len() <= n {
                self.depth.resize(n + 1, 0);
            }
            self.depth[n] = self.depth[n].max(d);
        }
    }

    /// The node of hop `i` (TTL `i + 1`) of `p`, with address `h`.
    fn hop(&mut self, p: &PathObs, i: usize, h: &str, last: bool) -> usize {
        if h.is_empty() {
            self.node(
                format!("silent:{}:{}:{}", p.agent, p.target, i + 1),
                NodeKind::Silent,
                None,
                "*".into(),
                &p.opd,
            )
        } else if last && p.reached {
            let name = if p.label.is_empty() {
                &p.target
            } else {
                &p.label
            };
            self.node(
                format!("ip:{h}"),
                NodeKind::Target,
                Some(h),
                format!("{name} {h}"),
                &p.opd,
            )
        } else {
            self.node(
                format!("ip:{h}"),
                NodeKind::Router,
                Some(h),
                h.to_string(),
                &p.opd,
            )
        }
    }
}

/// Place every node in a column (its depth; targets in the last column, so
/// data centre and internet line up) and a row; returns (columns, most rows).
fn lay_out(nodes: &mut [Node], edges: &[(usize, usize)], depth: &mut [usize]) -> (usize, usize) {
    let last = depth.iter().copied().max().unwrap_or(0);
    for (n, d) in nodes.iter().zip(depth.iter_mut()) {
        if n.kind == NodeKind::Target {
            *d = last;
        }
    }
    let layers = if nodes.is_empty() { 0 } else { last + 1 };
    // Rows: agents by label; each later column ordered by the mean row
    // of its predecessors, so lines cross little.
    let mut rows = 0;
    let mut placed: Vec<Option<f64>> = vec![None; nodes.len()];
    for layer in 0..layers {
        let mut col: Vec<(f64, String, usize)> = (0..nodes.len())
            .filter(|&i| depth[i] == layer)
            .map(|i| (mean_pred_row(edges, &placed, i), nodes[i].label.clone(), i))
            .collect();
        col.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (r, (_, _, i)) in col.iter().enumerate() {
            placed[*i] = Some(r as f64);
            nodes[*i].layer = layer;
            nodes[*i].row = r;
        }
        rows = rows.max(col.len());
    }
    (layers, rows)
}

/// Mean row of node `i`'s placed predecessors; `f64::MAX` (last) if none.
fn mean_pred_row(edges: &[(usize, usize)], placed: &[Option<f64>], i: usize) -> f64 {
    let preds: Vec<f64> = edges
        .iter()
        .filter(|e| e.1 == i)
        .filter_map(|e| placed[e.0])
        .collect();
    if preds.is_empty() {
        f64::MAX
    } else {
        preds.iter().sum::<f64>() / preds.len() as f64
    }
}

/// Path changes first seen at or after `from_ms`, oldest first.
fn changes(paths: &[PathObs], from_ms: i64) -> Vec<Change> {
    let mut changes = paths
        .iter()
        .filter(|p| p.first_seen_ms >= from_ms)
        .filter_map(|p| {
            Some(Change {
                opd: p.opd.clone(),
                agent: p.agent.clone(),
                target: p.target.clone(),
                old_last_seen_ms: p.previous_last_seen_ms,
                at_ms: p.first_seen_ms,
                old_hops: p.previous_hops.clone()?,
                new_hops: p.hops.clone(),
            })
        })
        .collect::<Vec<_>>();
    changes.sort_by_key(|c| c.at_ms);
    changes
}

/// Load the paths of a report's scope and period and build the topology.
pub fn for_report(
    conn: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Topology, StoreError> {
    let paths = load(
        conn,
        &Filter {
            opd: opd.map(str::to_string),
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
            ..Filter::default()
        },
    )?;
    Ok(Topology::build(&paths, from_ms))
}

/// Section title.
pub fn title(l: Lang) -> &'static str {
    if l == Lang::En {
        "Appendix: intranet topology"
    } else {
        "Lampiran: Topologi intranet"
    }
}

/// Escape for HTML text and attributes.
pub use super::render::html::esc;

/// Hops as text: `a → b → *`.
pub fn hops_text(h: &[String]) -> String {
    h.iter()
        .map(|a| if a.is_empty() { "*" } else { a.as_str() })
        .collect::<Vec<_>>()
        .join(" → ")
}

const COL_W: f64 = 170.0;
const ROW_H: f64 = 34.0;
const PAD: f64 = 12.0;

/// Drawing coordinates of node `n` (centre), in SVG units.
fn at(n: &Node) -> (f64, f64) {
    (
        PAD + 60.0 + n.layer as f64 * COL_W,
        PAD + 12.0 + n.row as f64 * ROW_H,
    )
}

/// Drawing size in SVG units.
fn size(g: &Topology) -> (f64, f64) {
    (
        2.0 * PAD + 120.0 + g.layers.saturating_sub(1) as f64 * COL_W,
        2.0 * PAD + 12.0 + g.rows as f64 * ROW_H,
    )
}

/// The graph as a neutral drawing (see [`super::model::Diagram`]): agents
/// and targets as squares, routers and silent hops as dots.
pub fn diagram(g: &Topology, l: Lang) -> Diagram {
    let (width, height) = size(g);
    Diagram {
        caption: title(l).to_string(),
        width,
        height,
        marks: g
            .nodes
            .iter()
            .map(|n| {
                let (x, y) = at(n);
                Mark {
                    x,
                    y,
                    label: n.label.clone(),
                    class: format!("{:?}", n.kind),
                    address: n.address.clone(),
                    shape: match n.kind {
                        NodeKind::Router | NodeKind::Silent => Shape::Dot,
                        NodeKind::Agent | NodeKind::Target => Shape::Square,
                    },
                    tone: match n.kind {
                        NodeKind::Agent => Tone::Primary,
                        NodeKind::Router => Tone::Neutral,
                        NodeKind::Silent => Tone::Muted,
                        NodeKind::Target => Tone::Positive,
                    },
                }
            })
            .collect(),
        lines: g.edges.iter().map(|e| (e.from, e.to)).collect(),
    }
}

/// Inline SVG of the graph (no scripts, no external assets), as on the
/// `/jalur` page. Each node is a `<g>` with `data-address` for routers and
/// targets.
pub fn svg(g: &Topology, l: Lang) -> String {
    super::render::html::svg(&diagram(g, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(id: i64, agent: &str, opd: &str, hops: &[&str], first: i64, last: i64) -> PathObs {
        PathObs {
            id,
            agent: agent.into(),
            opd: opd.into(),
            target: "dc".into(),
            group: "datacenter".into(),
            address: "10.0.0.1".into(),
            label: "Pusat Data".into(),
            hops: hops.iter().map(|s| s.to_string()).collect(),
            rtt_us: vec![100; hops.len()],
            reached: true,
            first_seen_ms: first,
            last_seen_ms: last,
            times_seen: 3,
            previous_id: None,
            previous_hops: None,
            previous_last_seen_ms: None,
        }
    }

    #[test]
    fn shared_routers_merge_and_changes_list() {
        let mut changed = obs(
            3,
            "a1",
            "dinkes",
            &["10.1.0.1", "10.9.0.2", "10.0.0.1"],
            50,
            90,
        );
        changed.previous_id = Some(1);
        changed.previous_hops = Some(vec![
            "10.1.0.1".into(),
            "10.9.0.1".into(),
            "10.0.0.1".into(),
        ]);
        changed.previous_last_seen_ms = Some(40);
        let paths = vec![
            obs(
                1,
                "a1",
                "dinkes",
                &["10.1.0.1", "10.9.0.1", "10.0.0.1"],
                0,
                40,
            ),
            obs(
                2,
                "a2",
                "bappeda",
                &["10.2.0.1", "10.9.0.2", "", "10.0.0.1"],
                0,
                90,
            ),
            changed,
        ];
        let g = Topology::build(&paths, 10);
        // Two agents, two access routers, one shared core, one silent hop, one target.
        let count = |k| g.nodes.iter().filter(|n| n.kind == k).count();
        assert_eq!(count(NodeKind::Agent), 2);
        assert_eq!(count(NodeKind::Router), 3, "{:#?}", g.nodes);
        assert_eq!(count(NodeKind::Silent), 1);
        assert_eq!(count(NodeKind::Target), 1);
        let core = g.nodes.iter().find(|n| n.id == "ip:10.9.0.2").unwrap();
        assert_eq!(core.opds, ["dinkes", "bappeda"]);
        // The old path's router is not in the current topology.
        assert!(!g.nodes.iter().any(|n| n.id == "ip:10.9.0.1"));
        let target = g.nodes.iter().find(|n| n.kind == NodeKind::Target).unwrap();
        assert_eq!(target.layer, g.layers - 1);
        // a1: 3 links, a2: 4 links, none shared (a2's core link goes to the silent hop).
        assert_eq!(g.edges.len(), 7);
        assert_eq!(g.changes.len(), 1);
        assert_eq!(g.changes[0].at_ms, 50);
        assert_eq!(
            hops_text(&g.changes[0].old_hops),
            "10.1.0.1 → 10.9.0.1 → 10.0.0.1"
        );
        let s = svg(&g, Lang::Id);
        assert!(s.contains("data-address=\"10.9.0.2\""));
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<line").count(), g.edges.len());
    }
}
