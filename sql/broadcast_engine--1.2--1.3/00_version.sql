/*
 * 1.3: nothing lost, nothing crossed.  Backups restore, caches follow their
 * sources, tenant checks hold behind SET ROLE fronts, and one tenant cannot
 * stop or slow the others.  Each file of this folder is one concern.
 */
