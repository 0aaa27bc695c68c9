// Browser entry of StateTopic's cases (spec/topics/state-topic.spec.ts).
import '../topics/state-topic.spec.js';
