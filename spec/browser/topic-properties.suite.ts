// Browser entry of the core topic specs that need no Node built-in: the fast-check
// properties (spec/topics/topic.property.spec.ts) (StateTopic's cases have their own entry).
import '../topics/topic.property.spec.js';
